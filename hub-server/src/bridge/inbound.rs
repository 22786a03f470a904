//! The bounded queue between Redis and the hub's fan-out. The subscriber's connection (RESP3, its
//! pub/sub messages arriving as pushes) reads its socket in redis-rs's own task and hands every
//! message to [`InboundSender`] without waiting; the subscriber task takes them off in order and
//! delivers them. redis-rs's own pub/sub connection puts them in an unbounded channel instead:
//! a burst from other hubs faster than this hub's fan-out would grow memory without limit (and
//! Redis's own output-buffer limit for pub/sub clients never trips, as the socket is always read).
//!
//! Here the queue is bounded in messages and in bytes. What does not fit is shed: counted
//! (`inbound_shed`), never queued. The other hubs' per-channel counters make the loss visible on
//! the next message of each affected room (`missed`), and clients see the gap in the room's
//! offsets and recover it from the history (`join` with `since`), as after any reconnect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use redis::{PushInfo, PushKind, Value};
use tokio::sync::{Notify, mpsc};

/// One pub/sub message: its channel and payload, as Redis sent them.
#[derive(Debug)]
pub struct Inbound {
    pub channel: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Inbound {
    fn size(&self) -> usize {
        self.channel.len() + self.payload.len()
    }

    /// A `message` (or sharded `smessage`) push: `[channel, payload]`.
    fn from_push(info: PushInfo) -> Option<Self> {
        if !matches!(info.kind, PushKind::Message | PushKind::SMessage) {
            return None;
        }
        let mut data = info.data.into_iter();
        match (data.next(), data.next()) {
            (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) => {
                Some(Inbound { channel, payload })
            }
            _ => None,
        }
    }
}

/// What both ends share: the bytes queued now, and whether the connection was lost.
#[derive(Debug, Default)]
struct Shared {
    queued_bytes: AtomicUsize,
    lost: AtomicBool,
    lost_signal: Notify,
}

/// Called once per message shed.
pub type OnShed = Arc<dyn Fn() + Send + Sync>;

/// Pass to `AsyncConnectionConfig::set_push_sender`: never blocks redis-rs's reader.
#[derive(Clone)]
pub struct InboundSender {
    tx: mpsc::Sender<Inbound>,
    max_bytes: usize,
    shared: Arc<Shared>,
    shed: OnShed,
}

impl std::fmt::Debug for InboundSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundSender")
            .field("max_bytes", &self.max_bytes)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl redis::aio::AsyncPushSender for InboundSender {
    fn send(&self, info: PushInfo) -> Result<(), redis::aio::SendError> {
        if info.kind == PushKind::Disconnection {
            self.shared.lost.store(true, Ordering::Release);
            self.shared.lost_signal.notify_one();
            return Ok(());
        }
        // Subscribe confirmations are answers to our commands; redis-rs has them already.
        let Some(message) = Inbound::from_push(info) else {
            return Ok(());
        };
        let size = message.size();
        let queued = self.shared.queued_bytes.fetch_add(size, Ordering::AcqRel);
        // A message larger than the whole budget still passes when nothing else waits.
        if queued > 0 && queued + size > self.max_bytes {
            self.shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            (self.shed)();
            return Ok(());
        }
        match self.tx.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
                (self.shed)();
                Ok(())
            }
            // The subscriber let go of this connection: tell redis-rs to stop pushing.
            Err(mpsc::error::TrySendError::Closed(_)) => Err(redis::aio::SendError),
        }
    }
}

/// The subscriber's end, one per connection.
#[derive(Debug)]
pub struct InboundReceiver {
    rx: mpsc::Receiver<Inbound>,
    shared: Arc<Shared>,
}

/// A queue for one connection: at most `max_messages` and `max_bytes` (one message alone may be
/// larger); `shed` is called for each message that does not fit.
pub fn queue(
    max_messages: usize,
    max_bytes: usize,
    shed: OnShed,
) -> (InboundSender, InboundReceiver) {
    let (tx, rx) = mpsc::channel(max_messages.max(1));
    let shared = Arc::new(Shared::default());
    let sender = InboundSender {
        tx,
        max_bytes,
        shared: shared.clone(),
        shed,
    };
    (sender, InboundReceiver { rx, shared })
}

impl InboundReceiver {
    /// The next message, in the order Redis sent them; `None` once the connection is lost (after
    /// what it had already queued).
    pub async fn recv(&mut self) -> Option<Inbound> {
        loop {
            if let Ok(message) = self.rx.try_recv() {
                return Some(self.taken(message));
            }
            if self.shared.lost.load(Ordering::Acquire) {
                // A last message may have been queued between the try above and the flag.
                return self.rx.try_recv().ok().map(|m| self.taken(m));
            }
            tokio::select! {
                message = self.rx.recv() => return message.map(|m| self.taken(m)),
                _ = self.shared.lost_signal.notified() => {}
            }
        }
    }

    fn taken(&self, message: Inbound) -> Inbound {
        self.shared
            .queued_bytes
            .fetch_sub(message.size(), Ordering::AcqRel);
        message
    }

    #[cfg(test)]
    fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use redis::aio::AsyncPushSender;

    use super::*;

    fn counting() -> (Arc<AtomicU64>, OnShed) {
        let shed = Arc::new(AtomicU64::new(0));
        let count = shed.clone();
        (
            shed,
            Arc::new(move || {
                count.fetch_add(1, Ordering::Relaxed);
            }),
        )
    }

    fn message(channel: &str, payload: &str) -> PushInfo {
        PushInfo {
            kind: PushKind::Message,
            data: vec![
                Value::BulkString(channel.as_bytes().to_vec()),
                Value::BulkString(payload.as_bytes().to_vec()),
            ],
        }
    }

    #[tokio::test]
    async fn past_its_bounds_the_queue_sheds_and_counts_and_takes_more_once_drained() {
        let (shed, on_shed) = counting();
        // 3 messages or 100 bytes, whichever comes first.
        let (tx, mut rx) = queue(3, 100, on_shed);
        for i in 0..5 {
            tx.send(message("c", &format!("m{i}"))).expect("open");
        }
        assert_eq!(shed.load(Ordering::Relaxed), 2, "two past 3 messages");
        tx.send(message("c", &"x".repeat(200))).expect("open");
        assert_eq!(shed.load(Ordering::Relaxed), 3, "too many bytes");
        let first = rx.recv().await.expect("queued");
        assert_eq!(
            (first.channel, first.payload),
            (b"c".to_vec(), b"m0".to_vec())
        );
        rx.recv().await.expect("queued");
        rx.recv().await.expect("queued");
        assert_eq!(rx.queued_bytes(), 0);
        // Alone, an oversized message passes: the bound never blocks a single message.
        tx.send(message("c", &"x".repeat(200))).expect("open");
        assert_eq!(rx.recv().await.expect("queued").payload.len(), 200);
        assert_eq!(shed.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_lost_connection_ends_the_stream_after_what_was_queued() {
        let (tx, mut rx) = queue(8, 1 << 20, counting().1);
        tx.send(message("c", "last")).expect("open");
        tx.send(PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        })
        .expect("open");
        // Subscribe confirmations and other pushes are not messages.
        tx.send(PushInfo {
            kind: PushKind::Subscribe,
            data: vec![Value::BulkString(b"c".to_vec()), Value::Int(1)],
        })
        .expect("open");
        assert_eq!(rx.recv().await.expect("queued").payload, b"last");
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_dropped_receiver_stops_the_pushes() {
        let (tx, rx) = queue(8, 1 << 20, counting().1);
        drop(rx);
        assert!(tx.send(message("c", "m")).is_err());
    }
}
