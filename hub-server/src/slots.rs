//! Admission of client connections, from the TCP accept on: a connection still in its HTTP
//! handshake holds a place (and up to `max_header_bytes` of memory) as much as a session does.
//!
//! Every accepted connection takes a [`Handshake`] — refused at once past `max_handshakes` of them,
//! or when handshakes and sessions together fill `max_connections` plus a small reserve (so
//! `/health` probes still get through to a hub full of sessions). An upgrade turns its handshake
//! into a session [`Slot`], at most `max_connections` of them; the slot is given back when the
//! session ends, the handshake when its connection upgrades or closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http_accept::Admission;

/// Connections admitted beyond a full house of sessions, for health probes and the like (they
/// cannot upgrade: that needs a session slot).
pub const PROBE_RESERVE: usize = 16;

#[derive(Debug, Default)]
struct Counts {
    handshakes: AtomicUsize,
    sessions: AtomicUsize,
}

/// The client listener's admission: a cloneable handle.
#[derive(Debug, Clone)]
pub struct Slots {
    counts: Arc<Counts>,
    max_sessions: usize,
    max_handshakes: usize,
}

/// A connection from its accept to its upgrade or end; shared by the requests it carries.
#[derive(Debug)]
pub struct Handshake {
    counts: Arc<Counts>,
    max_sessions: usize,
    upgraded: AtomicBool,
}

/// One session's place; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot(Arc<Counts>);

impl Slots {
    pub fn new(max_sessions: usize, max_handshakes: usize) -> Self {
        Slots {
            counts: Arc::default(),
            max_sessions,
            max_handshakes,
        }
    }

    pub fn max(&self) -> usize {
        self.max_sessions
    }

    /// Connections admitted and not yet upgraded (or closed).
    pub fn handshakes(&self) -> usize {
        self.counts.handshakes.load(Ordering::Acquire)
    }
}

impl Admission for Slots {
    type Ticket = Arc<Handshake>;

    fn admit(&self) -> Option<Arc<Handshake>> {
        let sessions = self.counts.sessions.load(Ordering::Acquire);
        let room = self
            .max_handshakes
            .min((self.max_sessions + PROBE_RESERVE).saturating_sub(sessions));
        self.counts
            .handshakes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < room).then_some(n + 1)
            })
            .ok()?;
        Some(Arc::new(Handshake {
            counts: self.counts.clone(),
            max_sessions: self.max_sessions,
            upgraded: AtomicBool::new(false),
        }))
    }
}

impl Handshake {
    /// The session slot this connection's upgrade needs, or `None` when `max_connections`
    /// sessions run already. The handshake's place is given back on success.
    pub fn upgrade(&self) -> Option<Slot> {
        if self.upgraded.load(Ordering::Acquire) {
            return None;
        }
        self.counts
            .sessions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_sessions).then_some(n + 1)
            })
            .ok()?;
        if self.upgraded.swap(true, Ordering::AcqRel) {
            // Another request of the same connection won: give the slot back.
            self.counts.sessions.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.counts.handshakes.fetch_sub(1, Ordering::AcqRel);
        Some(Slot(self.counts.clone()))
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        if !self.upgraded.load(Ordering::Acquire) {
            self.counts.handshakes.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_stop_at_max_and_a_dropped_one_comes_back() {
        let slots = Slots::new(2, 100);
        let (a, b, c) = (slots.admit(), slots.admit(), slots.admit());
        let (a, b, c) = (a.expect("a"), b.expect("b"), c.expect("c"));
        let session_a = a.upgrade().expect("first");
        let _session_b = b.upgrade().expect("second");
        assert!(c.upgrade().is_none(), "a third session out of two");
        assert_eq!(slots.handshakes(), 1, "c is still in its handshake");
        drop(session_a);
        assert!(c.upgrade().is_some(), "the dropped slot is free again");
        assert!(c.upgrade().is_none(), "one upgrade per connection");
        assert_eq!(slots.handshakes(), 0);
    }

    #[test]
    fn handshakes_are_bounded_and_count_against_the_connection_limit() {
        let slots = Slots::new(3, 5);
        let pending: Vec<_> = (0..5).map(|_| slots.admit().expect("place")).collect();
        assert!(slots.admit().is_none(), "past max_handshakes");
        drop(pending);
        assert_eq!(
            slots.handshakes(),
            0,
            "closed handshakes give their place back"
        );
        // Three sessions fill the hub: only the probe reserve is left for handshakes.
        let sessions: Vec<_> = (0..3)
            .map(|_| slots.admit().expect("place").upgrade().expect("slot"))
            .collect();
        let small = Slots::new(3, 100);
        let _full: Vec<_> = (0..3)
            .map(|_| small.admit().expect("place").upgrade().expect("slot"))
            .collect();
        let probes: Vec<_> = std::iter::from_fn(|| small.admit()).take(1000).collect();
        assert_eq!(probes.len(), PROBE_RESERVE);
        assert!(
            probes[0].upgrade().is_none(),
            "a probe cannot become a session"
        );
        drop(sessions);
    }
}
