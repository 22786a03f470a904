//! One client connection: registers it with the hub, starts its writer, reads and executes its
//! frames, enforces its limits, and on the way out takes the single cleanup path. Its parts:
//! [`admission`] (who the client is — in `auth_mode = proxy` asked of the backend before
//! anything else), [`reader`] (the read loop), [`commands`] (what each frame does), all on the
//! one [`state::Session`] of the connection.

mod admission;
mod commands;
mod pending;
mod reader;
mod state;

use std::net::IpAddr;
use std::time::Instant;

use futures_util::{SinkExt, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

use crate::auth::Auth;
use crate::deflate;
use crate::error::CloseReason;
use crate::hooks::connect;
use crate::hub::ClientId;
use crate::outbox::Recipient;
use crate::rate_limit::TokenBucket;
use crate::state::AppState;
use crate::transport::Transport;
use crate::writer;
use state::Session;

/// How long a closing connection gets to send its last frames and finish the close handshake.
const WRITER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the upgrade request says of who the client is.
pub struct Credentials {
    /// The token of the upgrade's `Authorization: Bearer` header, if any.
    pub bearer: Option<String>,
    /// The headers the connect proxy sees (`proxy_headers`; empty unless `auth_mode = proxy`).
    pub hook_headers: connect::Headers,
}

/// Runs one connection to its end. `socket` is any WebSocket (split into halves here) or what
/// stands for one (`sse::socket`: the transport is this parameter, the session is the same);
/// `credentials` say who the client is (the `Authorization` header of the upgrade or of `POST
/// /sse/session`); `deflate` is the compression the handshake agreed to.
///
/// The socket is split before the session's future exists: a future keeps room for its
/// arguments for as long as it lives (rust-lang/rust#62958), and a WebSocket is a few hundred
/// bytes that every idle connection would carry twice.
pub fn run<S>(
    socket: S,
    state: AppState,
    ip: IpAddr,
    credentials: Credentials,
    deflate: Option<deflate::Connection>,
    transport: Transport,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Stream<Item = Result<Message, WsError>>
        + futures_util::Sink<Message, Error = WsError>
        + Unpin
        + Send
        + 'static,
{
    let (sink, stream) = state.metrics.accepted(socket).split();
    let start = Box::new(Start {
        sink,
        credentials,
        deflate,
    });
    serve(start, stream, state, ip, transport)
}

/// What a session needs only until its writer runs. Boxed: the session's future keeps room for
/// what it captured for its whole life, and this is ~150 bytes an idle connection would carry.
struct Start<W> {
    sink: W,
    credentials: Credentials,
    deflate: Option<deflate::Connection>,
}

/// The session's future. Not an `async fn`: one would move each argument into a local of its
/// own and keep both for the connection's life (rust-lang/rust#62958, ~500 bytes per idle
/// connection here); the `async move` block below uses what it captured in place.
#[allow(clippy::manual_async_fn)] // on purpose: see above
fn serve<W, R>(
    start: Box<Start<W>>,
    mut stream: R,
    state: AppState,
    ip: IpAddr,
    transport: Transport,
) -> impl Future<Output = ()> + Send + 'static
where
    W: futures_util::Sink<Message, Error = WsError> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, WsError>> + Unpin + Send + 'static,
{
    async move {
        let settings = state.settings.clone();
        let client_id: ClientId = Uuid::new_v4().to_string().into();
        let (me, queue) = Recipient::new(settings.send_queue, settings.send_queue_bytes);
        let (close_tx, close_rx) = oneshot::channel();
        // Echo mode (the hub-echo conformance binary only): messages go back through the writer.
        let (echo, echo_rx) = match settings.echo {
            true => {
                let (tx, rx) = mpsc::channel(16);
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        // A block, so what only the start needs takes no room in the future once it is over.
        let (mut stream, vouched, bearer, writer) = {
            let Start {
                mut sink,
                credentials,
                deflate,
            } = {
                // Moved out in a block of its own: the box is freed at the end of the block
                // that holds it, which for `start` itself would be the session's end.
                let start = start;
                *start
            };
            // `auth_mode = proxy`: the backend says who the client is before the hub says
            // anything; a refusal closes at once with the backend's reason (no writer is running
            // yet). Boxed: an HTTP call's future is large, and only connections in this mode need
            // it, only now.
            let vouched = match (&state.auth, settings.echo) {
                (Auth::Proxy { .. }, false) => {
                    let asked =
                        ask_or_refuse(&state, &client_id, ip, &credentials, &mut sink, &mut stream);
                    // The identity boxed too: ~150 bytes the future would keep to its end.
                    match Box::pin(asked).await {
                        Some(identity) => Some(Box::new(identity)),
                        None => return,
                    }
                }
                _ => None,
            };
            // Counted once admitted: a client the connect proxy refused never held a transport.
            state.metrics.transport_opened(transport);
            let (outbound, inflating) =
                deflate.map(|d| d.split(settings.max_message_bytes)).unzip();
            let writer = tokio::spawn(writer::run(
                sink,
                queue,
                close_rx,
                transport.keepalive(settings.ping_interval),
                echo_rx,
                outbound,
            ));
            let stream = deflate::Inbound::new(stream, inflating);
            (stream, vouched, credentials.bearer, writer)
        };
        tracing::debug!(client_id = %client_id, %ip, ?transport, "client connected");

        let mut session = Session {
            state: &state,
            client_id: &client_id,
            me: &me,
            ip,
            bucket: TokenBucket::new(
                settings.rate_limit_per_sec,
                settings.rate_limit_burst,
                Instant::now(),
            ),
            rejected_in_a_row: 0,
            identity: None,
            user_slot: None,
            deadline: None,
            echo,
            pending: pending::Pending::default(),
        };
        let started = match session.echo {
            Some(_) => Ok(()),
            None => session.start(bearer.as_deref(), vouched.map(|b| *b)),
        };
        // The token (a few hundred bytes) is not needed past the start.
        drop(bearer);
        let reason = match started {
            Ok(()) => session.read_until_closed(&mut stream, &me.kick).await,
            Err(reason) => Some(reason),
        };

        // The one cleanup path: out of the hub (its Recipient clones go), the user's place given
        // back, counted as closed (and why) as soon as it is out — a slow consumer may take the
        // close handshake's whole grace to go — then tell the writer why.
        state.hub.remove(&client_id);
        // The backend hears of every admitted client's end, whoever closed (DESIGN 16).
        if let Some(identity) = &session.identity {
            let (code, text) = reason.map_or((1000, ""), |r| (u16::from(r.close_code()), r.text()));
            state.webhooks.emit(crate::webhooks::Event::disconnected(
                &client_id,
                &identity.user_id,
                state.hub.name(),
                code,
                text,
            ));
        }
        drop(session);
        drop(me);
        state.metrics.closed(reason);
        state.metrics.transport_closed(transport);
        // Boxed: the timers and joins of the end take room only at the end.
        Box::pin(close(writer, &mut stream, close_tx, reason)).await;
        tracing::debug!(client_id = %client_id, ?reason, "client disconnected");
    }
}

/// `auth_mode = proxy`: who the backend says the client is; `None` when it refused, the client
/// then told why (the backend's text, or the reason's) and closed.
async fn ask_or_refuse<W, R>(
    state: &AppState,
    client_id: &ClientId,
    ip: IpAddr,
    credentials: &Credentials,
    sink: &mut W,
    stream: &mut R,
) -> Option<crate::auth::Identity>
where
    W: futures_util::Sink<Message, Error = WsError> + Unpin,
    R: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let asked = admission::ask_backend(state, client_id, ip, &credentials.hook_headers);
    let verdict = tokio::select! {
        verdict = asked => verdict,
        _ = state.shutdown.wait() => Err((CloseReason::ShuttingDown, None)),
    };
    match verdict {
        Ok(identity) => Some(identity),
        Err((reason, text)) => {
            state.metrics.closed(Some(reason));
            let text = text.unwrap_or_else(|| reason.text().to_owned());
            let close = CloseFrame {
                code: reason.close_code(),
                reason: text.into(),
            };
            let closing = async {
                if sink.send(Message::Close(Some(close))).await.is_ok() {
                    while let Some(Ok(_)) = stream.next().await {}
                }
            };
            let _ = tokio::time::timeout(WRITER_GRACE, closing).await;
            None
        }
    }
}

/// The end of a session, once it is out of the hub: with a `reason`, the writer sends it (after
/// what is queued) while the client's answer is read; without one (the client left) the writer
/// ends without a close frame. Both within [`WRITER_GRACE`].
async fn close<R>(
    mut writer: tokio::task::JoinHandle<()>,
    stream: &mut R,
    close_tx: oneshot::Sender<CloseReason>,
    reason: Option<CloseReason>,
) where
    R: Stream<Item = Result<Message, WsError>> + Unpin,
{
    match reason {
        Some(reason) => {
            let _ = close_tx.send(reason);
            // Finish the close handshake: keep reading (and discarding) until the client answers
            // our close frame. Dropping a socket with unread input makes the kernel send a reset,
            // which can destroy the error and close frames still in flight to the client.
            let drain = async { while let Some(Ok(_)) = stream.next().await {} };
            let both = async { tokio::join!(&mut writer, drain) };
            if tokio::time::timeout(WRITER_GRACE, both).await.is_err() {
                writer.abort();
            }
        }
        // The client left on its own: dropping the sender ends the writer without a close frame.
        None => {
            drop(close_tx);
            if tokio::time::timeout(WRITER_GRACE, &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        }
    }
}
