//! One WebSocket to the hub, from the upgrade to its end: the socket's writer task (fed through a
//! bounded queue, so a socket that stopped draining never blocks the client), the frames it reads,
//! the questions asked on it and awaiting answers (the hub answers one connection's joins and
//! presence questions per room in the order asked), its send pace, and whether anything was heard
//! lately (the heartbeat). Knows nothing of rooms or publishes.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::pacer::Pacer;
use crate::wire::Wire;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Close code the client reports for a connection that ended without one (a reset, a timeout).
pub(crate) const LOCAL_CLOSE: u16 = 1006;

/// Frames waiting for the writer at most; more means the socket stopped draining.
const WRITE_QUEUE: usize = 1024;

/// What a frame sent on this connection asked, so its answer can find its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    Join,
    Presence,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Closed {
    pub(crate) fn local(reason: impl Into<String>) -> Self {
        Closed {
            code: LOCAL_CLOSE,
            reason: reason.into(),
        }
    }
}

/// Opens a WebSocket to `url`, with the token (if any) in the upgrade's `Authorization` header:
/// the way non-browser clients authenticate, one round trip sooner than an `auth` frame.
pub(crate) async fn open(url: String, token: Option<String>) -> Result<Socket, Closed> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Closed::local(format!("bad hub URL: {e}")))?;
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Closed::local("the token is not a valid header value"))?;
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
    }
    match tokio_tungstenite::connect_async_with_config(request, None, true).await {
        Ok((socket, _response)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(Closed::local(format!(
            "the hub answered the upgrade with HTTP {}",
            response.status()
        ))),
        Err(e) => Err(Closed::local(format!("cannot connect: {e}"))),
    }
}

/// An open connection.
pub(crate) struct Connection {
    /// Which connection of the client this is (counts up).
    pub generation: u64,
    writer: mpsc::Sender<WsMessage>,
    writer_task: JoinHandle<()>,
    pub reader: SplitStream<Socket>,
    /// The welcome's client id, once welcomed.
    pub client_id: Option<String>,
    pending: HashMap<String, VecDeque<(u64, Asked)>>,
    /// Leaves sent on this connection whose `left` has not come back, per room: such a `left`
    /// answers us, it is not the hub taking the client out of a room it may have joined again.
    leaving: HashMap<String, u32>,
    pacer: Pacer,
    /// A frame arrived since the last heartbeat tick.
    pub heard: bool,
    pub ping_sent: bool,
    /// The hub's close frame, when it sent one.
    pub close: Option<Closed>,
    /// The write queue overflowed: the connection is to be dropped.
    pub broken: bool,
}

impl Connection {
    pub(crate) fn new(
        socket: Socket,
        generation: u64,
        rate: f64,
        burst: u32,
        now: Instant,
    ) -> Self {
        let (sink, reader) = socket.split();
        let (writer, rx) = mpsc::channel(WRITE_QUEUE);
        let writer_task = tokio::spawn(write_loop(sink, rx));
        Connection {
            generation,
            writer,
            writer_task,
            reader,
            client_id: None,
            pending: HashMap::new(),
            leaving: HashMap::new(),
            pacer: Pacer::new(rate, burst, now),
            heard: false,
            ping_sent: false,
            close: None,
            broken: false,
        }
    }

    pub(crate) fn welcomed(&self) -> bool {
        self.client_id.is_some()
    }

    fn push(&mut self, text: String) -> bool {
        if self.broken {
            return false;
        }
        match self.writer.try_send(WsMessage::text(text)) {
            Ok(()) => true,
            Err(_) => {
                // Full (the socket stopped draining) or the writer is gone: either way this
                // connection is done; the driver drops it and reconnects.
                self.broken = true;
                false
            }
        }
    }

    /// Sends a frame that cannot wait (join, leave, presence, auth, ping): counted against the
    /// pace, never held back by it.
    pub(crate) fn send_control(&mut self, text: String, now: Instant) -> bool {
        self.pacer.force(now);
        self.push(text)
    }

    /// Leaves `room`, remembering that its `left` will answer us.
    pub(crate) fn send_leave(&mut self, room: &str, now: Instant) -> bool {
        let sent = self.send_control(crate::frame::outbound::leave(room), now);
        if sent {
            *self.leaving.entry(room.to_owned()).or_default() += 1;
        }
        sent
    }

    /// A `left` for `room` came: true when it answers a leave of ours (then forgotten).
    pub(crate) fn answers_our_leave(&mut self, room: &str) -> bool {
        let Some(asked) = self.leaving.get_mut(room) else {
            return false;
        };
        *asked -= 1;
        if *asked == 0 {
            self.leaving.remove(room);
        }
        true
    }

    /// Remembers that `session` asked `what` about `room`: its answer comes in turn.
    pub(crate) fn expect(&mut self, room: &str, session: u64, what: Asked) {
        self.pending
            .entry(room.to_owned())
            .or_default()
            .push_back((session, what));
    }

    /// Who asked the question an answer about `room` answers.
    pub(crate) fn answered(&mut self, room: &str) -> Option<(u64, Asked)> {
        let list = self.pending.get_mut(room)?;
        let first = list.pop_front();
        if list.is_empty() {
            self.pending.remove(room);
        }
        first
    }

    /// Closes politely (a close frame with `code`), giving the writer `grace` to send it.
    pub(crate) fn close(self, code: u16, reason: &str, grace: Duration) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        let sent = self.writer.try_send(WsMessage::Close(Some(frame))).is_ok();
        let task = self.writer_task;
        drop(self.reader);
        if sent {
            tokio::spawn(async move {
                let abort = task.abort_handle();
                if tokio::time::timeout(grace, task).await.is_err() {
                    abort.abort();
                }
            });
        } else {
            task.abort();
        }
    }

    /// Drops the connection at once (a dead peer will not answer a close frame).
    pub(crate) fn abort(self) {
        self.writer_task.abort();
    }
}

impl Wire for Connection {
    fn generation(&self) -> u64 {
        self.generation
    }

    fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or_default()
    }

    fn send(&mut self, text: String) -> bool {
        self.push(text)
    }

    fn pace(&mut self, now: Instant) -> bool {
        self.pacer.try_take(now)
    }

    fn pace_wait(&mut self, now: Instant) -> Duration {
        self.pacer.wait(now)
    }
}

/// The socket's writer: sends what the queue brings, flushing once per batch; ends with the
/// queue (a close frame is the last thing it sends) or at the first write error.
async fn write_loop(mut sink: SplitSink<Socket, WsMessage>, mut rx: mpsc::Receiver<WsMessage>) {
    while let Some(first) = rx.recv().await {
        let mut closing = matches!(first, WsMessage::Close(_));
        if sink.feed(first).await.is_err() {
            return;
        }
        while !closing && let Ok(next) = rx.try_recv() {
            closing = matches!(next, WsMessage::Close(_));
            if sink.feed(next).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() || closing {
            return;
        }
    }
}
