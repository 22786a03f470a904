//! A client's outbox: the bounded queue (in frames and in bytes) that the hub, the session and
//! acks fill with [`Recipient::offer`] and that the client's writer drains through its [`Drain`],
//! and the kick switch that closes the client from anywhere. A full queue never blocks a sender:
//! it closes the client as a slow consumer.
//!
//! One allocation per client holds all of it, and the queue itself holds no memory while it is
//! empty (issue 25): a tokio channel allocated its first block of 32 slots (~2.2 KB) at creation,
//! for every idle connection.

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

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

/// Capacity (in frames) past which the writer's spare queue is freed after its batch rather
/// than kept for the next one: a burst's capacity is not held for the rest of a busy stretch.
const MAX_SPARE: usize = 256;

/// What one client's senders and its writer share (one allocation per client).
#[derive(Debug)]
pub struct Outbox {
    /// The frames in order, and whether the writer is gone. A std mutex: it is held for a push or
    /// a swap, never across an `.await`.
    queue: Mutex<Queue>,
    /// Bytes waiting in `queue` or in the batch the writer is writing, against `byte_limit`
    /// (senders reserve, the writer gives back once the batch is written).
    bytes: AtomicUsize,
    byte_limit: usize,
    /// Frames in `queue` at most (`send_queue`).
    frame_limit: usize,
    /// Closes the client. A join's waiting buffer does not use its own: its refusals close
    /// `owner`.
    pub kick: Kick,
    /// The writer, woken when the queue gets its first frame or its last sender goes.
    writer: AtomicWaker,
    /// Live [`Recipient`]s: none left means the session is over (nothing can be queued any more,
    /// and a [`WeakRecipient`] no longer upgrades).
    senders: AtomicUsize,
    /// Set for a join's waiting buffer: the client it stands in for.
    owner: Option<Weak<Outbox>>,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Frame>,
    /// The writer's [`Drain`] is gone: offers fail without closing anyone.
    closed: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing in a critical section can leave the queue half-changed: a poisoned lock (a
        // panic elsewhere while held) still guards a consistent queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Reserves `n` bytes; false when that would take the queue past the limit. A frame into an
    /// empty queue always fits, so a single frame larger than the limit is still delivered.
    fn try_reserve(&self, n: usize) -> bool {
        let before = self.bytes.fetch_add(n, Ordering::Relaxed);
        if before != 0 && before.saturating_add(n) > self.byte_limit {
            self.release(n);
            return false;
        }
        true
    }

    /// Gives `n` bytes back (saturating: never wraps the counter).
    fn release(&self, n: usize) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            });
    }

    /// Closes the client this outbox delivers to (its owner's, for a join's waiting buffer).
    fn close_slow(&self) {
        match &self.owner {
            Some(owner) => {
                if let Some(owner) = owner.upgrade() {
                    owner.kick.close(CloseReason::SlowConsumer);
                }
            }
            None => self.kick.close(CloseReason::SlowConsumer),
        }
    }
}

/// How the hub reaches one client: a handle on its [`Outbox`] (`recipient.kick` is its kick
/// switch). Cloning it is one atomic add; every clone counts as a sender.
#[derive(Debug)]
pub struct Recipient {
    outbox: Arc<Outbox>,
}

impl Deref for Recipient {
    type Target = Outbox;

    fn deref(&self) -> &Outbox {
        &self.outbox
    }
}

impl Clone for Recipient {
    fn clone(&self) -> Self {
        self.outbox.senders.fetch_add(1, Ordering::Relaxed);
        Recipient {
            outbox: self.outbox.clone(),
        }
    }
}

impl Drop for Recipient {
    fn drop(&mut self) {
        if self.outbox.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last one: the writer learns that nothing more can come.
            self.outbox.writer.wake();
        }
    }
}

/// A [`Recipient`] held without keeping the client alive: what an ack waiting on Redis keeps, so
/// that a message waiting out an outage does not hold a closed client's writer open.
#[derive(Debug, Clone)]
pub struct WeakRecipient {
    outbox: Weak<Outbox>,
}

impl WeakRecipient {
    /// The client, while its session lives (while any [`Recipient`] of it does).
    pub fn upgrade(&self) -> Option<Recipient> {
        let outbox = self.outbox.upgrade()?;
        let mut senders = outbox.senders.load(Ordering::Relaxed);
        loop {
            if senders == 0 {
                return None;
            }
            match outbox.senders.compare_exchange_weak(
                senders,
                senders + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Recipient { outbox }),
                Err(now) => senders = now,
            }
        }
    }
}

impl Recipient {
    /// A client's outbox, bounded to `frame_limit` frames and `byte_limit` bytes, and the
    /// writer's end of it.
    pub fn new(frame_limit: usize, byte_limit: usize) -> (Recipient, Drain) {
        Recipient::with_owner(frame_limit, byte_limit, None)
    }

    fn with_owner(
        frame_limit: usize,
        byte_limit: usize,
        owner: Option<Weak<Outbox>>,
    ) -> (Recipient, Drain) {
        let outbox = Arc::new(Outbox {
            queue: Mutex::default(),
            bytes: AtomicUsize::new(0),
            byte_limit,
            frame_limit,
            kick: Kick::default(),
            writer: AtomicWaker::new(),
            senders: AtomicUsize::new(1),
            owner,
        });
        let drain = Drain {
            outbox: outbox.clone(),
            spare: VecDeque::new(),
        };
        (Recipient { outbox }, drain)
    }

    /// A join's waiting buffer for this client: the same bounds, a budget of its own (it is
    /// emptied by the hub's `settle`, not by a writer), and a full one closes this client.
    pub fn waiting_buffer(&self) -> (Recipient, Drain) {
        Recipient::with_owner(
            self.frame_limit,
            self.byte_limit,
            Some(Arc::downgrade(&self.outbox)),
        )
    }

    pub fn downgrade(&self) -> WeakRecipient {
        WeakRecipient {
            outbox: Arc::downgrade(&self.outbox),
        }
    }

    /// Queues `frame`; a queue full in frames or in bytes closes the client as a slow consumer,
    /// a queue whose writer is gone refuses it without closing anyone. Returns whether queued.
    pub fn offer(&self, frame: &Frame) -> bool {
        let outbox = &*self.outbox;
        let len = frame.as_str().len();
        if !outbox.try_reserve(len) {
            if !outbox.lock().closed {
                outbox.close_slow();
            }
            return false;
        }
        // Cloned (two reference counts) before the lock, to keep the critical section a push.
        let frame = frame.clone();
        let offered = {
            let mut queue = outbox.lock();
            if queue.closed {
                Offered::Closed
            } else if queue.frames.len() >= outbox.frame_limit {
                Offered::Full
            } else {
                queue.frames.push_back(frame);
                Offered::Queued {
                    first: queue.frames.len() == 1,
                }
            }
        };
        match offered {
            Offered::Queued { first } => {
                // Only a frame into an empty queue wakes the writer: it takes everything queued
                // at once, so the ones after it are found with it.
                if first {
                    outbox.writer.wake();
                }
                true
            }
            Offered::Full => {
                outbox.release(len);
                outbox.close_slow();
                false
            }
            Offered::Closed => {
                outbox.release(len);
                false
            }
        }
    }
}

enum Offered {
    Queued { first: bool },
    Full,
    Closed,
}

/// The writer's end of an [`Outbox`]: takes everything queued at once, in order. Dropping it
/// closes the outbox (offers fail from then on) and frees what was still queued.
#[derive(Debug)]
pub struct Drain {
    outbox: Arc<Outbox>,
    /// The queue swapped in at each take: a busy client's batches reuse its capacity instead of
    /// allocating one per batch. Freed when the writer goes idle.
    spare: VecDeque<Frame>,
}

impl Drain {
    /// The next batch: every frame queued, in order; `None` once every sender is gone and nothing
    /// is left. Hand the batch back with [`Drain::written`] once it is written.
    pub async fn next_batch(&mut self) -> Option<VecDeque<Frame>> {
        std::future::poll_fn(|cx| self.poll_batch(cx)).await
    }

    fn poll_batch(&mut self, cx: &mut Context<'_>) -> Poll<Option<VecDeque<Frame>>> {
        // Registered before the queue is looked at: a frame queued after the look wakes us.
        self.outbox.writer.register(cx.waker());
        let mut queue = self.outbox.lock();
        if !queue.frames.is_empty() {
            std::mem::swap(&mut queue.frames, &mut self.spare);
            drop(queue);
            return Poll::Ready(Some(std::mem::take(&mut self.spare)));
        }
        if self.outbox.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(None);
        }
        // Idle: neither queue keeps memory while nothing comes (freed outside the lock).
        let emptied = std::mem::take(&mut queue.frames);
        drop(queue);
        drop(emptied);
        self.spare = VecDeque::new();
        Poll::Pending
    }

    /// A batch from [`Drain::next_batch`] is written: its `bytes` go back to the budget, and its
    /// (now empty) queue becomes the spare, unless a burst made it large.
    pub fn written(&mut self, mut batch: VecDeque<Frame>, bytes: usize) {
        self.outbox.release(bytes);
        batch.clear();
        if batch.capacity() <= MAX_SPARE {
            self.spare = batch;
        }
    }

    /// Everything queued now, without waiting, its bytes given back: the rest a closing writer
    /// sends before its close frame, or what a join's buffer held.
    pub fn take_all(&mut self) -> VecDeque<Frame> {
        let frames = std::mem::take(&mut self.outbox.lock().frames);
        let bytes = frames.iter().map(|f| f.as_str().len()).sum();
        self.outbox.release(bytes);
        frames
    }

    /// The next queued frame, if any (tests read a client's frames one at a time).
    #[cfg(test)]
    pub fn try_recv(&mut self) -> Option<Frame> {
        let frame = self.outbox.lock().frames.pop_front()?;
        self.outbox.release(frame.as_str().len());
        Some(frame)
    }

    /// Capacity the queue holds now, in frames (tests check an unused queue holds none).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.outbox.lock().frames.capacity() + self.spare.capacity()
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        let rest = {
            let mut queue = self.outbox.lock();
            queue.closed = true;
            std::mem::take(&mut queue.frames)
        };
        drop(rest);
    }
}

#[cfg(test)]
mod tests;
