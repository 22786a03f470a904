//! A client's outbox: the bounded queue (in frames and in bytes) that the hub, the session and
//! acks fill with `try_send` and that the client's writer drains, and the kick switch that closes
//! the client from anywhere. A full queue never blocks a sender: it closes the client as a slow
//! consumer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use tokio::sync::{Notify, mpsc};

use crate::error::CloseReason;
use crate::protocol::Frame;

/// Tells a session to close, from anywhere, without waiting: the first reason wins.
#[derive(Debug, Default)]
pub struct Kick {
    reason: OnceLock<CloseReason>,
    notify: Notify,
}

impl Kick {
    pub fn close(&self, reason: CloseReason) {
        if self.reason.set(reason).is_ok() {
            // notify_one keeps a permit, so a session not yet waiting still sees it.
            self.notify.notify_one();
        }
    }

    /// The reason the client is being closed, once it is.
    pub fn reason(&self) -> Option<CloseReason> {
        self.reason.get().copied()
    }

    pub async fn wait(&self) -> CloseReason {
        loop {
            if let Some(reason) = self.reason.get() {
                return *reason;
            }
            self.notify.notified().await;
        }
    }
}

/// How the hub reaches one client: its bounded queue, the bytes in it, and its kick switch.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub tx: mpsc::Sender<Frame>,
    /// Bytes waiting in `tx`, against `send_queue_bytes` (the writer gives them back).
    pub queued: Arc<QueuedBytes>,
    pub kick: Arc<Kick>,
}

/// A [`Recipient`] held without keeping the client alive: what an ack waiting on Redis keeps, so
/// that a message waiting out an outage does not hold a closed client's writer open.
#[derive(Debug, Clone)]
pub struct WeakRecipient {
    tx: mpsc::WeakSender<Frame>,
    queued: Weak<QueuedBytes>,
    kick: Weak<Kick>,
}

impl WeakRecipient {
    /// The client, while its session lives.
    pub fn upgrade(&self) -> Option<Recipient> {
        Some(Recipient {
            tx: self.tx.upgrade()?,
            queued: self.queued.upgrade()?,
            kick: self.kick.upgrade()?,
        })
    }
}

impl Recipient {
    pub fn downgrade(&self) -> WeakRecipient {
        WeakRecipient {
            tx: self.tx.downgrade(),
            queued: Arc::downgrade(&self.queued),
            kick: Arc::downgrade(&self.kick),
        }
    }

    /// Queues `frame`; a queue full in frames or in bytes closes the client as a slow consumer.
    /// Returns whether queued.
    pub fn offer(&self, frame: &Frame) -> bool {
        let len = frame.as_str().len();
        if !self.queued.try_add(len) {
            if !self.tx.is_closed() {
                self.kick.close(CloseReason::SlowConsumer);
            }
            return false;
        }
        match self.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.release(len);
                self.kick.close(CloseReason::SlowConsumer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued.release(len);
                false
            }
        }
    }
}

/// The bytes waiting in one client's queue, against `send_queue_bytes`. One atomic add per
/// queued frame, one subtraction per written batch.
#[derive(Debug)]
pub struct QueuedBytes {
    bytes: AtomicUsize,
    limit: usize,
}

impl QueuedBytes {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(QueuedBytes {
            bytes: AtomicUsize::new(0),
            limit,
        })
    }

    /// Reserves `n` bytes; false when that would take the queue past the limit. A frame into an
    /// empty queue always fits, so a single frame larger than the limit is still delivered.
    pub fn try_add(&self, n: usize) -> bool {
        let before = self.bytes.fetch_add(n, Ordering::Relaxed);
        if before != 0 && before.saturating_add(n) > self.limit {
            self.release(n);
            return false;
        }
        true
    }

    /// Gives `n` bytes back. Saturates at zero: a frame queued by hand, past [`Recipient::offer`]
    /// (tests do), has no reservation, and giving its bytes back must not wrap the counter.
    pub fn release(&self, n: usize) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            });
    }

    pub fn get(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_bound_refuses_what_would_pass_it_but_never_a_frame_into_an_empty_queue() {
        let q = QueuedBytes::new(100);
        assert!(q.try_add(150), "alone in the queue, a large frame goes");
        assert!(!q.try_add(1), "nothing more while over the bound");
        q.release(150);
        assert!(q.try_add(60));
        assert!(q.try_add(40), "exactly at the bound");
        assert!(!q.try_add(1));
        assert_eq!(q.get(), 100, "a refused frame reserves nothing");
        q.release(1000);
        assert_eq!(q.get(), 0, "giving back more than was taken saturates");
    }
}
