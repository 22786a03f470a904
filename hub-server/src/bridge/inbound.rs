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
//!
//! On a Redis Cluster the subscriber holds a connection per node, all feeding this one queue:
//! each connection has a sender of its own ([`InboundSender::for_connection`]), and its loss (the
//! Disconnection push) comes out of the queue as [`Incoming::Lost`] after every message that
//! connection had queued before it, so nothing it delivered is mistaken for a message of a
//! channel already given up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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

/// What comes out of the queue.
#[derive(Debug)]
pub enum Incoming {
    Message(Inbound),
    /// The connection of this number was lost; every message it had queued came before.
    Lost(u64),
}

/// What both ends share: the bytes queued now, and the connections lost.
#[derive(Debug, Default)]
struct Shared {
    queued_bytes: AtomicUsize,
    /// Messages queued so far, all connections together.
    enqueued: AtomicU64,
    /// Lost connections, each with the number of messages queued before its loss.
    lost: Mutex<VecDeque<(u64, u64)>>,
    /// How many are in `lost`: the receiver looks at it without the lock, once per message.
    losses: AtomicUsize,
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
    /// Which connection pushes through this sender.
    conn: u64,
    /// False once the subscriber let go of the connection: what it still pushes is dropped.
    alive: Arc<AtomicBool>,
}

impl InboundSender {
    /// A sender for connection number `conn` (numbers are the caller's; one per connection).
    pub fn for_connection(&self, conn: u64) -> Self {
        InboundSender {
            conn,
            alive: Arc::new(AtomicBool::new(true)),
            ..self.clone()
        }
    }

    /// The number of the connection that pushes through this sender.
    pub fn connection(&self) -> u64 {
        self.conn
    }

    /// The subscriber let go of this sender's connection: drop whatever it still pushes, its
    /// loss included.
    pub fn retire(&self) {
        self.alive.store(false, Ordering::Release);
    }
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
        if !self.alive.load(Ordering::Acquire) {
            return Err(redis::aio::SendError);
        }
        if info.kind == PushKind::Disconnection {
            // Under the lock, so that the marks stay in the order of the queue.
            let mut lost = self
                .shared
                .lost
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            lost.push_back((self.shared.enqueued.load(Ordering::Acquire), self.conn));
            self.shared.losses.fetch_add(1, Ordering::Release);
            drop(lost);
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
            Ok(()) => {
                // After the send: the count never runs ahead of what is in the queue.
                self.shared.enqueued.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
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

/// The subscriber's end.
#[derive(Debug)]
pub struct InboundReceiver {
    rx: mpsc::Receiver<Inbound>,
    shared: Arc<Shared>,
    /// Messages taken so far.
    taken: u64,
}

/// A queue of at most `max_messages` and `max_bytes` (one message alone may be larger); `shed`
/// is called for each message that does not fit. The sender is connection 0's.
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
        conn: 0,
        alive: Arc::new(AtomicBool::new(true)),
    };
    let receiver = InboundReceiver {
        rx,
        shared,
        taken: 0,
    };
    (sender, receiver)
}

impl InboundReceiver {
    /// The next message, in the order Redis sent them, or the loss of a connection (after what it
    /// had queued); `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Incoming> {
        loop {
            if let Some(conn) = self.due_loss() {
                return Some(Incoming::Lost(conn));
            }
            if let Ok(message) = self.rx.try_recv() {
                return Some(Incoming::Message(self.taken(message)));
            }
            tokio::select! {
                message = self.rx.recv() => {
                    return message.map(|m| Incoming::Message(self.taken(m)));
                }
                _ = self.shared.lost_signal.notified() => {}
            }
        }
    }

    /// The oldest loss whose connection's messages have all been taken.
    fn due_loss(&mut self) -> Option<u64> {
        if self.shared.losses.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut lost = self
            .shared
            .lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match lost.front() {
            Some((mark, _)) if *mark <= self.taken => {
                self.shared.losses.fetch_sub(1, Ordering::Release);
                lost.pop_front().map(|(_, conn)| conn)
            }
            _ => None,
        }
    }

    fn taken(&mut self, message: Inbound) -> Inbound {
        self.taken += 1;
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

    impl InboundReceiver {
        async fn message(&mut self) -> Inbound {
            match self.recv().await {
                Some(Incoming::Message(m)) => m,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    fn lost() -> PushInfo {
        PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
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
        let first = rx.message().await;
        assert_eq!(
            (first.channel, first.payload),
            (b"c".to_vec(), b"m0".to_vec())
        );
        rx.message().await;
        rx.message().await;
        assert_eq!(rx.queued_bytes(), 0);
        // Alone, an oversized message passes: the bound never blocks a single message.
        tx.send(message("c", &"x".repeat(200))).expect("open");
        assert_eq!(rx.message().await.payload.len(), 200);
        assert_eq!(shed.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_lost_connection_is_reported_after_what_it_had_queued() {
        let (tx, mut rx) = queue(8, 1 << 20, counting().1);
        let (one, two) = (tx.for_connection(1), tx.for_connection(2));
        one.send(message("a", "before")).expect("open");
        two.send(message("b", "before")).expect("open");
        one.send(lost()).expect("open");
        two.send(message("b", "after")).expect("open");
        // Subscribe confirmations and other pushes are not messages.
        two.send(PushInfo {
            kind: PushKind::Subscribe,
            data: vec![Value::BulkString(b"b".to_vec()), Value::Int(1)],
        })
        .expect("open");
        assert_eq!(rx.message().await.channel, b"a");
        assert_eq!(rx.message().await.channel, b"b");
        assert!(matches!(rx.recv().await, Some(Incoming::Lost(1))));
        assert_eq!(rx.message().await.payload, b"after");
        // A retired connection's pushes, its loss included, are dropped.
        two.retire();
        assert!(two.send(message("b", "late")).is_err());
        assert!(two.send(lost()).is_err());
        tx.send(message("c", "live")).expect("open");
        assert_eq!(rx.message().await.channel, b"c");
        drop((tx, one, two));
        assert!(rx.recv().await.is_none(), "every sender gone");
    }

    #[tokio::test]
    async fn a_dropped_receiver_stops_the_pushes() {
        let (tx, rx) = queue(8, 1 << 20, counting().1);
        drop(rx);
        assert!(tx.send(message("c", "m")).is_err());
    }
}
