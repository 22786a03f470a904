//! Receiver-side bookkeeping of what other hubs published: drops duplicates (a batch re-sent
//! after a Redis reconnect) and counts gaps (messages Redis never delivered to us).

use std::collections::HashMap;

use uuid::Uuid;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New: deliver it. `missed` messages of this origin on this channel never reached us.
    Deliver { missed: u64 },
    /// Seen before (or older than what was seen): drop it.
    Duplicate,
}

/// Bounded so that origins of long-gone hubs cannot grow it forever.
const MAX_ORIGINS: usize = 4096;
const MAX_CHANNELS: usize = 65536;

#[derive(Debug, Default)]
pub struct SequenceTracker {
    /// Highest `seq` seen per origin: publishes of one origin arrive in order, whatever the channel.
    last_seq: HashMap<Uuid, u64>,
    /// Last per-channel count `n` seen per origin and channel.
    last_on_channel: HashMap<(Uuid, String), u64>,
}

impl SequenceTracker {
    pub fn observe(&mut self, origin: Uuid, channel: &str, seq: u64, n: u64) -> Verdict {
        if self.last_seq.get(&origin).is_some_and(|&last| seq <= last) {
            return Verdict::Duplicate;
        }
        if self.last_seq.len() >= MAX_ORIGINS {
            self.last_seq.clear();
        }
        self.last_seq.insert(origin, seq);
        if self.last_on_channel.len() >= MAX_CHANNELS {
            self.last_on_channel.clear();
        }
        let seen = self.last_on_channel.insert((origin, channel.to_owned()), n);
        // A count at or below the last one means the publisher restarted its count for this
        // channel (it forgets idle channels): nothing to check then.
        let missed = seen.map_or(0, |last| n.saturating_sub(last).saturating_sub(1));
        Verdict::Deliver { missed }
    }

    /// After unsubscribing, gaps on that channel are expected, not losses.
    pub fn forget_channel(&mut self, channel: &str) {
        self.last_on_channel.retain(|(_, ch), _| ch != channel);
    }

    /// After our own subscription was re-established, what was published meanwhile never reached
    /// us by design of pub/sub: start the per-channel checks afresh.
    pub fn forget_channels(&mut self) {
        self.last_on_channel.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_messages_are_delivered_and_repeats_dropped() {
        let mut t = SequenceTracker::default();
        let o = Uuid::new_v4();
        assert_eq!(t.observe(o, "c", 1, 1), Verdict::Deliver { missed: 0 });
        assert_eq!(t.observe(o, "c", 2, 2), Verdict::Deliver { missed: 0 });
        assert_eq!(t.observe(o, "c", 2, 2), Verdict::Duplicate);
        assert_eq!(t.observe(o, "c", 1, 1), Verdict::Duplicate);
        assert_eq!(
            t.observe(o, "d", 5, 1),
            Verdict::Deliver { missed: 0 },
            "seq is per origin"
        );
        assert_eq!(
            t.observe(o, "c", 6, 3),
            Verdict::Deliver { missed: 0 },
            "3..5 went elsewhere"
        );
    }

    #[test]
    fn a_missing_publish_on_a_channel_is_counted() {
        let mut t = SequenceTracker::default();
        let o = Uuid::new_v4();
        t.observe(o, "c", 1, 1);
        assert_eq!(t.observe(o, "c", 5, 4), Verdict::Deliver { missed: 2 });
        assert_eq!(
            t.observe(o, "c", 9, 1),
            Verdict::Deliver { missed: 0 },
            "count restarted"
        );
    }

    #[test]
    fn origins_are_independent() {
        let mut t = SequenceTracker::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        t.observe(a, "c", 10, 1);
        assert_eq!(t.observe(b, "c", 1, 1), Verdict::Deliver { missed: 0 });
    }

    #[test]
    fn forgetting_a_channel_restarts_its_gap_check() {
        let mut t = SequenceTracker::default();
        let o = Uuid::new_v4();
        t.observe(o, "c", 1, 1);
        t.forget_channel("c");
        assert_eq!(t.observe(o, "c", 9, 8), Verdict::Deliver { missed: 0 });
    }
}
