//! The only writer of a client's socket. It takes everything queued at once (one lock, see
//! [`Drain`]) and flushes once per batch: one write() per frame caps a 2-core machine near 150k
//! frames/s, coalescing is what gets past that. It also sends the server pings and, when told,
//! the close frame.
//!
//! A client that agreed to permessage-deflate gets every frame of `compression_min_bytes` or more
//! compressed, with the bytes the frame's first such writer made for every recipient.
//!
//! The queue is bounded twice, in frames (`send_queue`) and in bytes (`send_queue_bytes`):
//! senders reserve a frame's bytes before queueing it, the writer gives them back once it has
//! written the batch they were in.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::ready;
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::deflate::{Outbound, compressed_message};
use crate::error::CloseReason;
use crate::outbox::Drain;
use crate::protocol::Frame;

/// A close frame to a client that stopped reading can block forever: give up after this.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Writes what `queue` brings (giving its bytes back as each batch is written) until every sender
/// is gone or a close reason comes. `echo` is the hub-echo test binary's way in: whole messages
/// the session read, written back as they are (see `session`); `None` in a hub. `deflate`: the
/// client agreed to compression.
///
/// Not an `async fn`, which would keep a second copy of each argument for the connection's life
/// (rust-lang/rust#62958): the block uses what it captured in place.
#[allow(clippy::manual_async_fn)] // on purpose: see above
pub fn run<S>(
    mut sink: S,
    mut queue: Drain,
    mut close: oneshot::Receiver<CloseReason>,
    ping_interval: Duration,
    mut echo: Option<mpsc::Receiver<Message>>,
    deflate: Option<Outbound>,
) -> impl Future<Output = ()>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    async move {
        let deflate = deflate.as_ref();
        let start = tokio::time::Instant::now() + ping_interval;
        let mut ping = tokio::time::interval_at(start, ping_interval);
        loop {
            tokio::select! {
                biased;
                reason = &mut close => {
                    let reason = reason.ok();
                    return Box::pin(finish(&mut sink, &mut queue, &mut echo, reason, deflate)).await;
                }
                batch = queue.next_batch() => {
                    let Some(mut batch) = batch else {
                        // Every sender is gone: the session is ending and says why next (or drops
                        // `close`, when the client left on its own).
                        let reason = close.await.ok();
                        return Box::pin(finish(&mut sink, &mut queue, &mut echo, reason, deflate)).await;
                    };
                    let bytes: usize = batch.iter().map(|f| f.as_str().len()).sum();
                    let written = write_batch(&mut sink, &mut batch, deflate).await;
                    queue.written(batch, bytes);
                    if written.is_err() {
                        return;
                    }
                }
                Some(msg) = next_echo(&mut echo) => {
                    if sink.send(echoed(msg, deflate)).await.is_err() {
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
}

/// The end of a connection, bounded by [`CLOSE_TIMEOUT`]: what the client sent back to it (echo
/// mode), then with a `reason` what is still queued and our close frame; without one (the client
/// closed) the close reply tungstenite has queued. The writer boxes it: its timer and writes take
/// room in the writer's future only at the end.
async fn finish<S>(
    sink: &mut S,
    queue: &mut Drain,
    echo: &mut Option<mpsc::Receiver<Message>>,
    reason: Option<CloseReason>,
    deflate: Option<&Outbound>,
) where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let finish = async {
        if let Some(echo) = echo {
            while let Ok(msg) = echo.try_recv() {
                if sink.feed(echoed(msg, deflate)).await.is_err() {
                    return;
                }
            }
        }
        match reason {
            Some(reason) => close_with(sink, queue, reason, deflate).await,
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

/// Feeds the batch to the sink frame by frame, then flushes. With `poll_fn` rather than a loop
/// of `feed(..).await`: the writer's future is sized for its largest await, and that loop's
/// (~260 bytes) was it, in every connection's writer, idle or not.
async fn write_batch<S>(
    sink: &mut S,
    batch: &mut VecDeque<Frame>,
    deflate: Option<&Outbound>,
) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let written = std::future::poll_fn(|cx| {
        while !batch.is_empty() {
            ready!(Pin::new(&mut *sink).poll_ready(cx))?;
            if let Some(frame) = batch.pop_front() {
                Pin::new(&mut *sink).start_send(outgoing(&frame, deflate))?;
            }
        }
        Pin::new(&mut *sink).poll_flush(cx)
    })
    .await;
    // After an error the frames not sent go with the connection, as they did from a drain.
    batch.clear();
    written
}

/// A frame as this client gets it: compressed when it agreed to compression and the frame is long
/// enough, else as text. Error frames always go as text: they are short, and the metrics read
/// their code on the way out (`metrics::socket`).
fn outgoing(frame: &Frame, deflate: Option<&Outbound>) -> Message {
    let json = frame.as_str();
    if let Some(deflate) = deflate
        && deflate.wants(json.len())
        && !frame.is_error()
    {
        let payload = match deflate.shared() {
            Some(deflaters) => frame.deflated(deflaters),
            // A client that asked for a smaller window: compressed for it alone.
            None => deflate.compress(json.as_bytes()),
        };
        if let Some(payload) = payload {
            return compressed_message(payload, true);
        }
    }
    Message::Text(frame.bytes())
}

/// A message the session read, written back (echo mode), compressed as a frame would be.
fn echoed(msg: Message, deflate: Option<&Outbound>) -> Message {
    let Some(deflate) = deflate else {
        return msg;
    };
    let (data, text): (&[u8], bool) = match &msg {
        Message::Text(t) => (t.as_bytes(), true),
        Message::Binary(b) => (b, false),
        _ => return msg,
    };
    match deflate.wants(data.len()).then(|| deflate.compress(data)) {
        Some(Some(payload)) => compressed_message(payload, text),
        _ => msg,
    }
}

/// Sends what is still queued (an error frame explaining the close, say), then the close frame.
async fn close_with<S>(
    sink: &mut S,
    queue: &mut Drain,
    reason: CloseReason,
    deflate: Option<&Outbound>,
) where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let mut rest = queue.take_all();
    if write_batch(sink, &mut rest, deflate).await.is_err() {
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
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    use std::sync::Arc;

    use super::*;
    use crate::outbox::Recipient;

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
        let (tx, rx) = Recipient::new(8, usize::MAX);
        let (close_tx, close_rx) = oneshot::channel();
        for _ in 0..3 {
            assert!(tx.offer(&Frame::pong()), "room in queue");
        }
        let writer = tokio::spawn(run(sink, rx, close_rx, Duration::from_secs(60), None, None));
        for _ in 0..3 {
            assert!(
                matches!(out.recv().await, Some(Message::Text(t)) if t.as_str() == Frame::pong().as_str())
            );
        }
        assert!(tx.offer(&Frame::pong()), "room in queue");
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

    #[tokio::test]
    async fn a_frame_offered_to_a_waiting_writer_goes_out_without_anything_else_happening() {
        let (sink, mut out) = sink_pair();
        let (tx, rx) = Recipient::new(8, usize::MAX);
        let (_close_tx, close_rx) = oneshot::channel();
        tokio::spawn(run(sink, rx, close_rx, Duration::from_secs(60), None, None));
        for n in 0..3 {
            // Let the writer go back to waiting on an empty queue.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            let frame = Frame::from_json(format!(r#"{{"n":{n}}}"#));
            assert!(tx.offer(&frame));
            let got = tokio::time::timeout(Duration::from_secs(10), out.recv()).await;
            assert!(
                matches!(&got, Ok(Some(Message::Text(t))) if t.as_str() == frame.as_str()),
                "{got:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pings_go_out_on_the_interval() {
        let (sink, mut out) = sink_pair();
        let (_tx, rx) = Recipient::new(8, usize::MAX);
        let (_close_tx, close_rx) = oneshot::channel();
        tokio::spawn(run(sink, rx, close_rx, Duration::from_secs(20), None, None));
        let first = tokio::time::timeout(Duration::from_secs(21), out.recv()).await;
        assert!(matches!(first, Ok(Some(Message::Ping(_)))), "{first:?}");
    }

    #[tokio::test]
    async fn the_writer_gives_back_the_bytes_of_what_it_wrote() {
        let (sink, mut out) = sink_pair();
        let (tx, rx) = Recipient::new(8, usize::MAX);
        let (_close_tx, close_rx) = oneshot::channel();
        for _ in 0..3 {
            assert!(tx.offer(&Frame::pong()), "room in queue");
        }
        assert_eq!(tx.queued_bytes(), 3 * Frame::pong().as_str().len());
        tokio::spawn(run(sink, rx, close_rx, Duration::from_secs(60), None, None));
        for _ in 0..3 {
            out.recv().await.expect("a frame");
        }
        // The bytes are given back just after the flush that wrote them.
        for _ in 0..100 {
            if tx.queued_bytes() == 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{} bytes still counted", tx.queued_bytes());
    }

    fn outbound(pools: &Arc<crate::deflate::Pools>, window_bits: u8) -> Outbound {
        let connection = crate::deflate::Connection {
            pools: pools.clone(),
            window_bits,
            min_bytes: 256,
            kinds: Arc::default(),
        };
        connection.split(1 << 20).0
    }

    /// The payload of a compressed frame, inflated, or `None` for any other message.
    fn inflated(msg: &Message, pools: &crate::deflate::Pools) -> Option<(Vec<u8>, *const u8)> {
        let Message::Frame(frame) = msg else {
            return None;
        };
        let header = frame.header();
        assert!(header.is_final && header.rsv1, "{header:?}");
        let payload = frame.payload();
        let message = pools.inflaters.inflate(payload, 1 << 20).expect("inflates");
        Some((message, payload.as_ptr()))
    }

    #[tokio::test]
    async fn long_frames_go_compressed_once_for_every_client_short_ones_and_errors_as_text() {
        let pools = Arc::new(crate::deflate::Pools::new(2));
        let long = Frame::from_json(format!(
            r#"{{"type":"x","content":"{}"}}"#,
            "ab".repeat(200)
        ));
        let error = Frame::error(&crate::error::ProtocolError::BadJson("x".repeat(300)));
        assert!(error.as_str().len() >= 256);
        let (mut outs, mut closers) = (Vec::new(), Vec::new());
        for window_bits in [15, 15, 10] {
            let (sink, out) = sink_pair();
            let (tx, rx) = Recipient::new(8, usize::MAX);
            let (close_tx, close_rx) = oneshot::channel();
            closers.push(close_tx);
            for frame in [&long, &Frame::pong(), &error] {
                assert!(tx.offer(frame), "room in queue");
            }
            tokio::spawn(run(
                sink,
                rx,
                close_rx,
                Duration::from_secs(60),
                None,
                Some(outbound(&pools, window_bits)),
            ));
            outs.push(out);
        }
        let mut payloads = Vec::new();
        for out in &mut outs {
            let first = out.recv().await.expect("a frame");
            let (message, at) = inflated(&first, &pools).expect("compressed");
            assert_eq!(message, long.as_str().as_bytes());
            payloads.push(at);
            let pong = out.recv().await.expect("a frame");
            assert!(matches!(&pong, Message::Text(t) if t.as_str() == Frame::pong().as_str()));
            let err = out.recv().await.expect("a frame");
            assert!(
                matches!(&err, Message::Text(t) if t.as_str() == error.as_str()),
                "{err:?}"
            );
        }
        assert_eq!(
            payloads[0], payloads[1],
            "one compression for both 15-bit clients"
        );
        assert_ne!(payloads[0], payloads[2], "the 10-bit client got its own");
    }

    #[tokio::test]
    async fn echoed_messages_are_compressed_with_their_type() {
        let pools = Arc::new(crate::deflate::Pools::new(1));
        let out = outbound(&pools, 15);
        let text = "é".repeat(200);
        let msg = echoed(Message::text(text.clone()), Some(&out));
        let Message::Frame(frame) = &msg else {
            panic!("{msg:?}")
        };
        assert_eq!(frame.header().opcode, OpCode::Data(Data::Text));
        assert_eq!(
            inflated(&msg, &pools).expect("compressed").0,
            text.as_bytes()
        );
        let msg = echoed(Message::binary(vec![1u8; 300]), Some(&out));
        let Message::Frame(frame) = &msg else {
            panic!("{msg:?}")
        };
        assert_eq!(frame.header().opcode, OpCode::Data(Data::Binary));
        assert!(matches!(
            echoed(Message::text("short"), Some(&out)),
            Message::Text(_)
        ));
        assert!(matches!(
            echoed(Message::text(text), None),
            Message::Text(_)
        ));
    }
}
