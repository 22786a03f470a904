//! A client's WebSocket as the metrics see it: the session wraps the upgraded socket in
//! [`Counted`] before splitting it, so bytes in and out and `error` frames by code are counted
//! where every frame passes, without a line in the reader or the writer. Bytes are payload bytes
//! as they cross the socket: a compressed message counts its compressed size, both ways (the
//! session inflates after this point). Bytes out are summed
//! per socket and added to the shared counter once per flush (the writer flushes once per batch),
//! not once per frame: the fan-out path stays one atomic add per batch.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::labels::error_code;
use super::stats::Stats;

#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    stats: Arc<Stats>,
    /// Written since the last flush, not yet added to `bytes_out`.
    unflushed: u64,
}

impl<S> Counted<S> {
    pub(super) fn new(inner: S, stats: Arc<Stats>) -> Self {
        Counted {
            inner,
            stats,
            unflushed: 0,
        }
    }

    fn settle(&mut self) {
        if self.unflushed > 0 {
            let stats = &self.stats;
            stats.bytes_out.fetch_add(self.unflushed, Ordering::Relaxed);
            self.unflushed = 0;
        }
    }
}

impl<S> Stream for Counted<S>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(msg @ (Message::Text(_) | Message::Binary(_))))) = &next {
            let stats = &self.stats;
            stats
                .bytes_in
                .fetch_add(msg.len() as u64, Ordering::Relaxed);
        }
        next
    }
}

impl<S> Sink<Message> for Counted<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, msg: Message) -> Result<(), WsError> {
        match &msg {
            Message::Text(text) => {
                self.unflushed += text.len() as u64;
                if let Some(code) = error_code(text.as_str()) {
                    self.stats.error_frame(code);
                }
            }
            Message::Binary(data) => self.unflushed += data.len() as u64,
            // A compressed frame (the writer sends error frames as text, so none is missed).
            Message::Frame(frame) if matches!(frame.header().opcode, OpCode::Data(_)) => {
                self.unflushed += frame.payload().len() as u64;
            }
            _ => {}
        }
        Pin::new(&mut self.inner).start_send(msg)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.settle();
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.settle();
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        self.settle();
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;
    use crate::auth::UserSlots;
    use crate::bridge::Bridge;
    use crate::error::ProtocolError;
    use crate::hub::Hub;
    use crate::metrics::Metrics;
    use crate::metrics::labels::{ERROR_CODES, index};
    use crate::protocol::Frame;

    #[tokio::test]
    async fn bytes_both_ways_and_error_frames_by_code_are_counted() {
        let metrics = Arc::new(Metrics::new(
            Hub::new("h".into(), 4),
            Bridge::Disabled,
            UserSlots::new(1),
        ));
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let server = WebSocketStream::from_raw_socket(ours, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(theirs, Role::Client, None).await;
        let mut counted = Counted::new(server, metrics.stats.clone());
        for msg in [
            Message::text("hello"),
            Message::Ping(Default::default()),
            Message::binary(vec![0u8; 3]),
        ] {
            client.send(msg).await.expect("client sends");
        }
        for _ in 0..3 {
            counted.next().await.expect("a message").expect("read");
        }
        let stats = &metrics.stats;
        assert_eq!(stats.bytes_in.load(Ordering::Relaxed), 8, "data only");

        let error = Frame::error(&ProtocolError::EmptyContent);
        counted
            .feed(Message::Text(error.bytes()))
            .await
            .expect("feed");
        counted.feed(Message::text("12345")).await.expect("feed");
        let compressed = crate::deflate::compressed_message(bytes::Bytes::from_static(&[0]), true);
        counted.feed(compressed).await.expect("feed");
        assert_eq!(
            stats.bytes_out.load(Ordering::Relaxed),
            0,
            "added at the flush"
        );
        counted.flush().await.expect("flush");
        assert_eq!(
            stats.bytes_out.load(Ordering::Relaxed),
            error.as_str().len() as u64 + 5 + 1
        );
        let code = index(ERROR_CODES, "empty_content").expect("listed");
        assert_eq!(stats.errors[code].load(Ordering::Relaxed), 1);
        let total: u64 = stats.errors.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, 1, "the plain text is no error");
        // The pong tungstenite answered the client's ping with, then the two text frames.
        for _ in 0..3 {
            client.next().await.expect("a frame").expect("read");
        }
        // The client (which agreed to nothing) refuses the compressed frame: it was written.
        let refused = client.next().await.expect("a frame");
        assert!(refused.is_err(), "{refused:?}");
    }
}
