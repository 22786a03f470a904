//! The client's timers, all in one place so the driver waits on one deadline: each timer has a
//! key, setting a key again moves it, and the driver takes the due ones in deadline order.
//! Keys name what fires (a room's gap timer, a publish's expiry, …), so there is nothing to cancel
//! when the thing itself goes: a key whose owner is gone is ignored when it fires.

use std::collections::{BTreeSet, HashMap};

use tokio::time::Instant;

/// What a timer is for. Rooms are named by their session id (a room unsubscribed and subscribed
/// again is a new session, whose timers are not the old one's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// The next connection attempt.
    Retry,
    /// No welcome yet: the attempt is given up.
    ConnectTimeout,
    /// Renew the token on the open connection.
    Refresh,
    /// Send queued publishes that waited for the pace or a pause.
    Pump,
    /// Nothing heard for a ping interval? Ask.
    Heartbeat,
    /// No frame since our ping: the connection is dead.
    PongDeadline,
    /// A hole in a room's offsets may need a `since` re-join.
    RoomGap(u64),
    /// A publish in doubt is due to be checked in the room's history.
    RoomProbe(u64),
    /// Ask again after the hub answered `unavailable`.
    RoomRetry(u64),
    /// A publish (by its sequence number) was not acknowledged in time.
    Publish(u64),
    /// A presence question (by its id) was not answered in time.
    Presence(u64),
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_key: HashMap<TimerKey, Instant>,
    by_time: BTreeSet<(Instant, TimerKey)>,
}

impl Timers {
    /// Sets (or moves) `key` to fire at `at`.
    pub(crate) fn set(&mut self, key: TimerKey, at: Instant) {
        if let Some(old) = self.by_key.insert(key, at) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((at, key));
    }

    /// Sets `key` unless it is set already (then the earlier deadline stays).
    pub(crate) fn set_if_unset(&mut self, key: TimerKey, at: Instant) {
        if !self.by_key.contains_key(&key) {
            self.set(key, at);
        }
    }

    pub(crate) fn clear(&mut self, key: TimerKey) {
        if let Some(at) = self.by_key.remove(&key) {
            self.by_time.remove(&(at, key));
        }
    }

    pub(crate) fn is_set(&self, key: TimerKey) -> bool {
        self.by_key.contains_key(&key)
    }

    /// The earliest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The earliest timer due at `now`, removed.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let &(at, key) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, key));
        self.by_key.remove(&key);
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn fires_in_deadline_order_and_moves_on_set() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Timers::default();
        t.set(TimerKey::Retry, t0 + ms(30));
        t.set(TimerKey::Publish(1), t0 + ms(10));
        t.set(TimerKey::Publish(2), t0 + ms(20));
        t.set(TimerKey::Publish(1), t0 + ms(40)); // moved
        t.set_if_unset(TimerKey::Retry, t0 + ms(5)); // kept at 30
        t.clear(TimerKey::Publish(2));
        assert_eq!(t.next_deadline(), Some(t0 + ms(30)));
        assert_eq!(t.pop_due(t0 + ms(29)), None);
        let due: Vec<_> = std::iter::from_fn(|| t.pop_due(t0 + ms(50))).collect();
        assert_eq!(due, [TimerKey::Retry, TimerKey::Publish(1)]);
        assert!(!t.is_set(TimerKey::Retry));
        assert_eq!(t.next_deadline(), None);
    }
}
