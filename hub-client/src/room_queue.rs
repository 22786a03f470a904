//! The buffer between the client's driver and one [`Subscription`](crate::Subscription): events in
//! order, bounded in messages and bytes. The driver never waits on it: a message that does not fit
//! is refused, and the driver stops taking the room's messages until the application has taken
//! half of what waits; then it is told (the `attention` signal) and fetches what it skipped from
//! the room's history. Other events (presence changes, recoveries) have a bound of their own.
//!
//! The lock is a std mutex held for a push or a pop, never across an `.await`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

use crate::events::RoomEvent;

/// Events other than messages a subscription holds at most (beyond that, presence changes are
/// dropped: the application can ask [`Room::presence`](crate::Room::presence)).
const MAX_OTHER_EVENTS: usize = 256;

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<RoomEvent>,
    messages: usize,
    bytes: usize,
    others: usize,
    waker: Option<Waker>,
    /// No more events will come (unsubscribed, or the client closed): the stream ends once drained.
    ended: bool,
    /// A message was refused: the driver waits for the application to catch up.
    lagging: bool,
    /// The application caught up after a lag: the driver has not noticed yet.
    caught_up: bool,
    /// The subscription was dropped: the driver is to unsubscribe.
    dropped: bool,
    /// Presence changes dropped because the application did not take the others.
    dropped_presence: u64,
    /// Times the buffer filled (a lag began).
    overflows: u64,
}

#[derive(Debug)]
pub(crate) struct RoomQueue {
    inner: Mutex<Inner>,
    max_messages: usize,
    max_bytes: usize,
    /// Wakes the driver (shared by every room of a client).
    attention: Arc<Notify>,
}

/// What became of an event offered to the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Taken,
    /// Taken, and half the buffer is in use: the driver lets the application run before it takes
    /// more (on a one-thread runtime the application would otherwise wait until the socket is
    /// drained, and the buffer fill).
    TakenHalfFull,
    /// The buffer is full (or the application has not caught up since it was).
    Refused,
}

/// What [`RoomQueue::take_notice`] found for the driver.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Notice {
    pub caught_up: bool,
    pub dropped: bool,
}

impl RoomQueue {
    pub(crate) fn new(max_messages: usize, max_bytes: usize, attention: Arc<Notify>) -> Self {
        RoomQueue {
            inner: Mutex::new(Inner::default()),
            max_messages,
            max_bytes,
            attention,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain counters behind: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers one event. A message that does not fit is refused and the queue is lagging until
    /// the application has taken half of what waits.
    pub(crate) fn push(&self, event: RoomEvent) -> Pushed {
        let mut inner = self.lock();
        if inner.ended {
            return Pushed::Taken; // nobody will read it; not a lag
        }
        match &event {
            RoomEvent::Message(m) => {
                let size = m.size();
                let full = inner.messages >= self.max_messages
                    || (inner.messages > 0 && inner.bytes + size > self.max_bytes);
                if full || inner.lagging {
                    if !inner.lagging {
                        inner.lagging = true;
                        inner.overflows += 1;
                    }
                    return Pushed::Refused;
                }
                inner.messages += 1;
                inner.bytes += size;
            }
            other => {
                // Recoveries and errors are never dropped (they come a few per re-join);
                // presence changes are, past the bound.
                if inner.others >= MAX_OTHER_EVENTS && matches!(other, RoomEvent::Presence(_)) {
                    inner.dropped_presence += 1;
                    return Pushed::Refused;
                }
                inner.others += 1;
            }
        }
        inner.events.push_back(event);
        let pushed = if inner.messages * 2 >= self.max_messages || inner.bytes * 2 >= self.max_bytes
        {
            Pushed::TakenHalfFull
        } else {
            Pushed::Taken
        };
        if let Some(waker) = inner.waker.take() {
            drop(inner);
            waker.wake();
        }
        pushed
    }

    /// No more events: the stream ends after what waits.
    pub(crate) fn end(&self) {
        let mut inner = self.lock();
        inner.ended = true;
        if let Some(waker) = inner.waker.take() {
            drop(inner);
            waker.wake();
        }
    }

    /// Whether the driver must hold the room's messages back (the application is behind).
    #[cfg(test)]
    pub(crate) fn lagging(&self) -> bool {
        self.lock().lagging
    }

    /// What the application did that the driver must act on (and forget it).
    pub(crate) fn take_notice(&self) -> Notice {
        let mut inner = self.lock();
        let notice = Notice {
            caught_up: std::mem::take(&mut inner.caught_up),
            dropped: inner.dropped,
        };
        if notice.caught_up {
            inner.lagging = false;
        }
        notice
    }

    /// The application's side: the next event, or the end.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<RoomEvent>> {
        let mut inner = self.lock();
        let Some(event) = inner.events.pop_front() else {
            if inner.ended {
                return Poll::Ready(None);
            }
            inner.waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        match &event {
            RoomEvent::Message(m) => {
                inner.messages -= 1;
                inner.bytes -= m.size();
                if inner.lagging
                    && !inner.caught_up
                    && inner.messages <= self.max_messages / 2
                    && inner.bytes <= self.max_bytes / 2
                {
                    inner.caught_up = true;
                    self.attention.notify_one();
                }
            }
            _ => inner.others -= 1,
        }
        Poll::Ready(Some(event))
    }

    /// The subscription is gone: the driver unsubscribes.
    pub(crate) fn drop_subscription(&self) {
        let mut inner = self.lock();
        inner.dropped = true;
        inner.events.clear();
        drop(inner);
        self.attention.notify_one();
    }

    pub(crate) fn dropped_presence(&self) -> u64 {
        self.lock().dropped_presence
    }

    pub(crate) fn overflows(&self) -> u64 {
        self.lock().overflows
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use futures_util::task::noop_waker_ref;

    use super::*;
    use crate::message::{Message, User};

    fn msg(offset: u64) -> RoomEvent {
        RoomEvent::Message(Message {
            id: format!("m{offset}"),
            room: "r".into(),
            from: "c".into(),
            user: User {
                id: "u".into(),
                name: None,
            },
            content: "x".into(),
            timestamp: String::new(),
            hub: String::new(),
            epoch: Some("e".into()),
            offset: Some(offset),
            replayed: false,
            raw: "0123456789".into(),
        })
    }

    fn next(q: &RoomQueue) -> Option<RoomEvent> {
        match q.poll_next(&mut Context::from_waker(noop_waker_ref())) {
            Poll::Ready(e) => e,
            Poll::Pending => panic!("nothing waiting"),
        }
    }

    #[test]
    fn refuses_when_full_until_half_is_taken_then_tells_the_driver() {
        let attention = Arc::new(Notify::new());
        let q = RoomQueue::new(4, 1 << 20, attention);
        assert!((1..=4).all(|o| q.push(msg(o)) != Pushed::Refused));
        assert_eq!(q.push(msg(5)), Pushed::Refused);
        assert!(q.lagging());
        next(&q);
        assert_eq!(
            q.push(msg(5)),
            Pushed::Refused,
            "still lagging after one is taken"
        );
        assert_eq!(q.take_notice(), Notice::default());
        next(&q);
        assert_eq!(
            q.take_notice(),
            Notice {
                caught_up: true,
                dropped: false
            }
        );
        assert!(!q.lagging());
        assert_eq!(q.push(msg(5)), Pushed::TakenHalfFull);
    }

    #[test]
    fn bounded_in_bytes_too() {
        let q = RoomQueue::new(100, 25, Arc::new(Notify::new()));
        assert_eq!(q.push(msg(1)), Pushed::Taken);
        assert_eq!(q.push(msg(2)), Pushed::TakenHalfFull);
        assert_eq!(q.push(msg(3)), Pushed::Refused, "30 bytes > 25");
    }

    #[test]
    fn ends_after_what_waits() {
        let q = RoomQueue::new(4, 1 << 20, Arc::new(Notify::new()));
        q.push(msg(1));
        q.end();
        assert!(matches!(next(&q), Some(RoomEvent::Message(_))));
        assert!(next(&q).is_none());
    }
}
