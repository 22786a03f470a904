//! The only writer of a client's socket. It drains everything queued before writing and flushes
//! once per batch: one write() per frame caps a 2-core machine near 150k frames/s, coalescing is
//! what gets past that. It also sends the server pings and, when told, the close frame.
//!
//! The queue is bounded twice: in frames by the channel (`send_queue`) and in bytes by
//! [`QueuedBytes`] (`send_queue_bytes`): senders reserve a frame's bytes before queueing it, the
//! writer gives them back once it has written the batch they were in.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::error::CloseReason;
use crate::outbox::QueuedBytes;
use crate::protocol::Frame;

/// Frames written per flush at most, so one busy client cannot starve its pings.
const MAX_BATCH: usize = 64;
/// A close frame to a client that stopped reading can block forever: give up after this.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Writes what `queue` brings (giving its bytes back to `queued`) until the queue ends or a close
/// reason comes. `echo` is the hub-echo test binary's way in: whole messages the session read,
/// written back as they are (see `session`); `None` in a hub.
pub async fn run<S>(
    mut sink: S,
    mut queue: mpsc::Receiver<Frame>,
    queued: Arc<QueuedBytes>,
    mut close: oneshot::Receiver<CloseReason>,
    ping_interval: Duration,
    mut echo: Option<mpsc::Receiver<Message>>,
) where
    S: Sink<Message, Error = WsError> + Unpin,
{
    // Grows on first use only: most connections are idle most of the time.
    let mut batch = Vec::new();
    let start = tokio::time::Instant::now() + ping_interval;
    let mut ping = tokio::time::interval_at(start, ping_interval);
    loop {
        tokio::select! {
            biased;
            reason = &mut close => return finish(&mut sink, &mut queue, &mut echo, reason.ok()).await,
            n = queue.recv_many(&mut batch, MAX_BATCH) => {
                if n == 0 {
                    // Every sender is gone: the session is ending and says why next (or drops
                    // `close`, when the client left on its own).
                    let reason = close.await.ok();
                    return finish(&mut sink, &mut queue, &mut echo, reason).await;
                }
                let bytes: usize = batch.iter().map(|f| f.as_str().len()).sum();
                let written = write_batch(&mut sink, &mut batch).await;
                queued.release(bytes);
                if written.is_err() {
                    return;
                }
            }
            Some(msg) = next_echo(&mut echo) => {
                if sink.send(msg).await.is_err() {
                    return;
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The end of a connection, bounded by [`CLOSE_TIMEOUT`]: what the client sent back to it (echo
/// mode), then with a `reason` what is still queued and our close frame; without one (the client
/// closed) the close reply tungstenite has queued.
async fn finish<S>(
    sink: &mut S,
    queue: &mut mpsc::Receiver<Frame>,
    echo: &mut Option<mpsc::Receiver<Message>>,
    reason: Option<CloseReason>,
) where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let finish = async {
        if let Some(echo) = echo {
            while let Ok(msg) = echo.try_recv() {
                if sink.feed(msg).await.is_err() {
                    return;
                }
            }
        }
        match reason {
            Some(reason) => close_with(sink, queue, reason).await,
            None => {
                let _ = sink.flush().await;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, finish).await;
}

async fn next_echo(echo: &mut Option<mpsc::Receiver<Message>>) -> Option<Message> {
    match echo {
        Some(echo) => echo.recv().await,
        None => std::future::pending().await,
    }
}

async fn write_batch<S>(sink: &mut S, batch: &mut Vec<Frame>) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    for frame in batch.drain(..) {
        sink.feed(Message::Text(frame.bytes())).await?;
    }
    sink.flush().await
}

/// Sends what is still queued (an error frame explaining the close, say), then the close frame.
async fn close_with<S>(sink: &mut S, queue: &mut mpsc::Receiver<Frame>, reason: CloseReason)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let mut rest = Vec::new();
    while let Ok(frame) = queue.try_recv() {
        rest.push(frame);
    }
    if write_batch(sink, &mut rest).await.is_err() {
        return;
    }
    let frame = CloseFrame {
        code: reason.close_code(),
        reason: reason.text().into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink standing in for the socket (this tests the writer's order, not the network).
    fn sink_pair() -> (
        impl Sink<Message, Error = WsError> + Unpin,
        mpsc::UnboundedReceiver<Message>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = futures_util::sink::unfold(tx, |tx, msg: Message| async move {
            tx.send(msg).map_err(|_| WsError::ConnectionClosed)?;
            Ok::<_, WsError>(tx)
        });
        (Box::pin(sink), rx)
    }

    #[tokio::test]
    async fn queued_frames_go_out_in_order_then_the_close_frame() {
        let (sink, mut out) = sink_pair();
        let (tx, rx) = mpsc::channel(8);
        let (close_tx, close_rx) = oneshot::channel();
        for _ in 0..3 {
            tx.try_send(Frame::pong()).expect("room in queue");
        }
        let writer = tokio::spawn(run(
            sink,
            rx,
            QueuedBytes::new(usize::MAX),
            close_rx,
            Duration::from_secs(60),
            None,
        ));
        for _ in 0..3 {
            assert!(
                matches!(out.recv().await, Some(Message::Text(t)) if t.as_str() == Frame::pong().as_str())
            );
        }
        tx.try_send(Frame::pong()).expect("room in queue");
        close_tx
            .send(CloseReason::RateLimitExceeded)
            .expect("writer alive");
        writer.await.expect("writer ends");
        let mut rest = Vec::new();
        while let Some(msg) = out.recv().await {
            rest.push(msg);
        }
        assert!(
            matches!(rest.first(), Some(Message::Text(_))),
            "the queued frame went first"
        );
        let close = rest.last().expect("a close frame");
        assert!(
            matches!(close, Message::Close(Some(f)) if u16::from(f.code) == 1008),
            "{close:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pings_go_out_on_the_interval() {
        let (sink, mut out) = sink_pair();
        let (_tx, rx) = mpsc::channel::<Frame>(8);
        let (_close_tx, close_rx) = oneshot::channel();
        tokio::spawn(run(
            sink,
            rx,
            QueuedBytes::new(usize::MAX),
            close_rx,
            Duration::from_secs(20),
            None,
        ));
        let first = tokio::time::timeout(Duration::from_secs(21), out.recv()).await;
        assert!(matches!(first, Ok(Some(Message::Ping(_)))), "{first:?}");
    }

    #[tokio::test]
    async fn the_writer_gives_back_the_bytes_of_what_it_wrote() {
        let (sink, mut out) = sink_pair();
        let (tx, rx) = mpsc::channel(8);
        let (_close_tx, close_rx) = oneshot::channel();
        let queued = QueuedBytes::new(usize::MAX);
        for _ in 0..3 {
            assert!(queued.try_add(Frame::pong().as_str().len()));
            tx.try_send(Frame::pong()).expect("room in queue");
        }
        assert!(queued.get() > 0);
        tokio::spawn(run(
            sink,
            rx,
            queued.clone(),
            close_rx,
            Duration::from_secs(60),
            None,
        ));
        for _ in 0..3 {
            out.recv().await.expect("a frame");
        }
        // The bytes are given back just after the flush that wrote them.
        for _ in 0..100 {
            if queued.get() == 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{} bytes still counted", queued.get());
    }
}
