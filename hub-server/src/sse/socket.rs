//! What stands for a WebSocket in an SSE session, so the session code is the same for both: its
//! input is the frames `POST /sse/send` brings (through the session's [`Inbox`]), its output the
//! body of the `GET /sse` response, each frame as an event (`data: <frame>\n\n`), a ping as a
//! comment line (`: ping`), the close as `event: close` with `data: {"code","reason"}`.
//!
//! An SSE client cannot answer a ping: a keep-alive handed to the response body counts as its
//! pong (the connection is up and taking bytes). A client that stops reading fills the body's
//! small channel, then the writer stops, then the session's queue fills: the slow-consumer rule
//! of WebSocket, unchanged.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::PollSender;

use super::registry::Inbox;

/// Chunks of the response body waiting for hyper: a batch of the writer is one chunk.
const BODY_CHUNKS: usize = 4;
/// Frames from `POST /sse/send` waiting for the session's read loop.
pub const INBOX_FRAMES: usize = 64;
/// A chunk is handed to the body once it holds this much, even mid-batch.
const CHUNK_BYTES: usize = 16 * 1024;
/// The first bytes of the body, so the client sees the stream open before the first frame.
const OPENING: &[u8] = b": open\n\n";

/// The session's socket (see the module's doc).
pub struct SseSocket {
    inbound: mpsc::Receiver<Result<Message, WsError>>,
    body: PollSender<Bytes>,
    /// Resolves once the response body is dropped (the client went away).
    gone: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Bytes written and not yet handed to the body.
    buffer: BytesMut,
    /// The buffer holds a keep-alive: its hand-over counts as a pong.
    ping_buffered: bool,
    /// Keep-alives handed over and not yet read as pongs by the session.
    pongs: usize,
    /// The close event is written: the session's input ends.
    closed: bool,
    reader: Option<Waker>,
}

/// The `GET /sse` response body: what the socket hands over, until the socket is dropped.
pub struct Body(mpsc::Receiver<Bytes>);

impl Stream for Body {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}

/// A socket, the inbox `POST /sse/send` writes to and the response body it reads from.
pub fn pair() -> (SseSocket, Inbox, Body) {
    let (inbox, inbound) = mpsc::channel(INBOX_FRAMES);
    let (body_tx, body_rx) = mpsc::channel(BODY_CHUNKS);
    // A fresh channel has room for this one.
    let _ = body_tx.try_send(Bytes::from_static(OPENING));
    let watcher = body_tx.clone();
    let socket = SseSocket {
        inbound,
        body: PollSender::new(body_tx),
        gone: Box::pin(async move { watcher.closed().await }),
        buffer: BytesMut::new(),
        ping_buffered: false,
        pongs: 0,
        closed: false,
        reader: None,
    };
    (socket, inbox, Body(body_rx))
}

impl SseSocket {
    fn wake_reader(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }

    fn write(&mut self, msg: Message) {
        if self.closed {
            return;
        }
        match msg {
            Message::Text(text) => event(&mut self.buffer, None, text.as_str()),
            Message::Ping(_) => {
                self.buffer.put_slice(b": ping\n\n");
                self.ping_buffered = true;
            }
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))
                    .unwrap_or((1005, String::new()));
                let data = serde_json::json!({ "code": code, "reason": reason }).to_string();
                event(&mut self.buffer, Some("close"), &data);
                self.closed = true;
                self.wake_reader();
            }
            // Never written by a session without compression; binary frames are not sent.
            Message::Binary(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

/// One event: `data:` lines (a frame never holds a newline, JSON escapes them; split anyway, as
/// the format demands), then the blank line that ends it.
fn event(buffer: &mut BytesMut, name: Option<&str>, data: &str) {
    if let Some(name) = name {
        buffer.put_slice(b"event: ");
        buffer.put_slice(name.as_bytes());
        buffer.put_u8(b'\n');
    }
    for line in data.split('\n') {
        buffer.put_slice(b"data: ");
        buffer.put_slice(line.trim_end_matches('\r').as_bytes());
        buffer.put_u8(b'\n');
    }
    buffer.put_u8(b'\n');
}

impl Stream for SseSocket {
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.pongs > 0 {
            this.pongs -= 1;
            return Poll::Ready(Some(Ok(Message::Pong(Bytes::new()))));
        }
        if this.closed || this.gone.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        this.reader = Some(cx.waker().clone());
        this.inbound.poll_recv(cx)
    }
}

impl Sink<Message> for SseSocket {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.buffer.len() >= CHUNK_BYTES {
            true => self.poll_flush(cx),
            false => Poll::Ready(Ok(())),
        }
    }

    fn start_send(mut self: Pin<&mut Self>, msg: Message) -> Result<(), WsError> {
        self.write(msg);
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = &mut *self;
        if this.buffer.is_empty() {
            return Poll::Ready(Ok(()));
        }
        match this.body.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(WsError::ConnectionClosed)),
            Poll::Ready(Ok(())) => {}
        }
        let chunk = this.buffer.split().freeze();
        if this.body.send_item(chunk).is_err() {
            return Poll::Ready(Err(WsError::ConnectionClosed));
        }
        if std::mem::take(&mut this.ping_buffered) {
            this.pongs += 1;
            this.wake_reader();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    use super::*;

    async fn read(body: &mut Body) -> String {
        let chunk = body.next().await.expect("a chunk").expect("infallible");
        String::from_utf8(chunk.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn frames_pings_and_the_close_become_events() {
        let (mut socket, _inbox, mut body) = pair();
        assert_eq!(read(&mut body).await, ": open\n\n");
        socket
            .feed(Message::text(r#"{"type":"a"}"#))
            .await
            .expect("fed");
        socket.feed(Message::text("x\ny")).await.expect("fed");
        socket.flush().await.expect("flushed");
        assert_eq!(
            read(&mut body).await,
            "data: {\"type\":\"a\"}\n\ndata: x\ndata: y\n\n"
        );
        socket
            .send(Message::Ping(Bytes::new()))
            .await
            .expect("sent");
        assert_eq!(read(&mut body).await, ": ping\n\n");
        let pong = socket.next().await;
        assert!(matches!(pong, Some(Ok(Message::Pong(_)))), "{pong:?}");
        let close = CloseFrame {
            code: 1008.into(),
            reason: "rate limit exceeded".into(),
        };
        socket
            .send(Message::Close(Some(close)))
            .await
            .expect("sent");
        assert_eq!(
            read(&mut body).await,
            "event: close\ndata: {\"code\":1008,\"reason\":\"rate limit exceeded\"}\n\n"
        );
        assert!(socket.next().await.is_none(), "input ends after the close");
        drop(socket);
        assert!(body.next().await.is_none(), "the body ends with the socket");
    }

    #[tokio::test]
    async fn input_comes_from_the_inbox_and_ends_when_the_body_goes() {
        let (mut socket, inbox, body) = pair();
        inbox.send(Ok(Message::text("hello"))).await.expect("room");
        let msg = socket.next().await;
        assert!(matches!(msg, Some(Ok(Message::Text(t))) if t.as_str() == "hello"));
        drop(body);
        assert!(socket.next().await.is_none(), "the client went away");
        assert!(socket.send(Message::text("late")).await.is_err());
    }
}
