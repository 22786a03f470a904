//! Receiver-side bookkeeping of what other hubs published: drops duplicates (a batch re-sent
//! after a Redis reconnect) and counts gaps (messages Redis never delivered to us). Bounded by age
//! (what is idle for 10 minutes is forgotten) and by size (past a bound the older half goes), so
//! 100k rooms and many hubs' restarts keep both the maps and the work per message small.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New: deliver it. `missed` messages of this origin on this channel never reached us.
    Deliver { missed: u64 },
    /// Seen before (or older than what was seen): drop it.
    Duplicate,
}

/// An origin or a channel not heard from for this long is forgotten: a hub that is gone, a room
/// nobody talks in. Forgetting costs nothing but the check of its next message (a duplicate
/// re-send after 10 minutes is not expected).
const IDLE: Duration = Duration::from_secs(600);
/// How often [`SequenceTracker::expire`] looks (it is called on every Redis ping).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Hard bounds, whatever the age: past one, the older half goes (never all, which would switch
/// off duplicate and gap detection exactly when traffic is heaviest).
const MAX_ORIGINS: usize = 65_536;
const MAX_CHANNEL_ENTRIES: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct Seen {
    last: u64,
    /// On a channel entry: the origin's highest `seq` seen on this channel (per-channel mode).
    seq: u64,
    at: Instant,
}

#[derive(Debug)]
pub struct SequenceTracker {
    /// Highest `seq` seen per origin: publishes of one origin arrive in order, whatever the channel.
    last_seq: HashMap<Uuid, Seen>,
    /// Last per-channel count `n` seen, per channel and origin: forgetting a channel is one removal.
    on_channel: HashMap<String, HashMap<Uuid, Seen>>,
    channel_entries: usize,
    swept: Instant,
    /// Duplicates judged per channel, not per origin: on a Redis Cluster each shard reaches us
    /// over its own connection, so one origin's publishes on channels of different shards arrive
    /// in any order between them (each channel's still in order).
    per_channel: bool,
}

impl Default for SequenceTracker {
    fn default() -> Self {
        SequenceTracker {
            last_seq: HashMap::new(),
            on_channel: HashMap::new(),
            channel_entries: 0,
            swept: Instant::now(),
            per_channel: false,
        }
    }
}

impl SequenceTracker {
    /// For sharded pub/sub (a Redis Cluster): see `per_channel`.
    pub fn per_channel() -> Self {
        SequenceTracker {
            per_channel: true,
            ..Self::default()
        }
    }

    pub fn observe(&mut self, origin: Uuid, channel: &str, seq: u64, n: u64) -> Verdict {
        self.observe_at(Instant::now(), origin, channel, seq, n)
    }

    fn observe_at(
        &mut self,
        now: Instant,
        origin: Uuid,
        channel: &str,
        seq: u64,
        n: u64,
    ) -> Verdict {
        if self.per_channel {
            let seen = self.on_channel.get(channel).and_then(|o| o.get(&origin));
            if seen.is_some_and(|s| seq <= s.seq) {
                return Verdict::Duplicate;
            }
        } else {
            if self.last_seq.get(&origin).is_some_and(|s| seq <= s.last) {
                return Verdict::Duplicate;
            }
            if self.last_seq.len() >= MAX_ORIGINS && !self.last_seq.contains_key(&origin) {
                halve(&mut self.last_seq);
            }
            self.last_seq.insert(
                origin,
                Seen {
                    last: seq,
                    seq,
                    at: now,
                },
            );
        }
        if self.channel_entries >= MAX_CHANNEL_ENTRIES {
            self.halve_channels();
        }
        let origins = match self.on_channel.get_mut(channel) {
            Some(origins) => origins,
            None => self.on_channel.entry(channel.to_owned()).or_default(),
        };
        let seen = origins.insert(
            origin,
            Seen {
                last: n,
                seq,
                at: now,
            },
        );
        if seen.is_none() {
            self.channel_entries += 1;
        }
        // A count at or below the last one means the publisher restarted its count for this
        // channel (it forgets idle channels): nothing to check then.
        let missed = seen.map_or(0, |s| n.saturating_sub(s.last).saturating_sub(1));
        Verdict::Deliver { missed }
    }

    /// After unsubscribing, gaps on that channel are expected, not losses.
    pub fn forget_channel(&mut self, channel: &str) {
        if let Some(origins) = self.on_channel.remove(channel) {
            self.channel_entries -= origins.len();
        }
    }

    /// Our subscription to `channel` was gone a while (its node lost, its slot moved to another
    /// master): what was published meanwhile never reached us, by design of pub/sub, so its gap
    /// check starts afresh.
    pub fn restart_channel(&mut self, channel: &str) {
        if !self.per_channel {
            return self.forget_channel(channel);
        }
        // The entries also hold what drops a re-sent batch: keep them, but no gap may be counted
        // against a count from before (a count "at or below" restarts the check).
        if let Some(origins) = self.on_channel.get_mut(channel) {
            for s in origins.values_mut() {
                s.last = u64::MAX;
            }
        }
    }

    /// Forgets what has been idle for [`IDLE`]; does the work at most once per [`SWEEP_EVERY`].
    pub fn expire(&mut self) {
        self.expire_at(Instant::now());
    }

    fn expire_at(&mut self, now: Instant) {
        if now.duration_since(self.swept) < SWEEP_EVERY {
            return;
        }
        self.swept = now;
        let fresh = |s: &Seen| now.duration_since(s.at) < IDLE;
        self.last_seq.retain(|_, s| fresh(s));
        let mut entries = 0;
        self.on_channel.retain(|_, origins| {
            origins.retain(|_, s| fresh(s));
            entries += origins.len();
            !origins.is_empty()
        });
        self.channel_entries = entries;
    }

    fn halve_channels(&mut self) {
        let mut ages: Vec<Instant> = self
            .on_channel
            .values()
            .flat_map(|origins| origins.values().map(|s| s.at))
            .collect();
        let Some(cut) = median(&mut ages) else {
            return;
        };
        let mut entries = 0;
        self.on_channel.retain(|_, origins| {
            origins.retain(|_, s| s.at > cut);
            entries += origins.len();
            !origins.is_empty()
        });
        self.channel_entries = entries;
    }
}

/// Keeps the newer half of `map`.
fn halve(map: &mut HashMap<Uuid, Seen>) {
    let mut ages: Vec<Instant> = map.values().map(|s| s.at).collect();
    if let Some(cut) = median(&mut ages) {
        map.retain(|_, s| s.at > cut);
    }
}

/// The middle value (the upper one of an even count): the cut for keeping the newer half.
pub(super) fn median<T: Ord + Copy>(ages: &mut [T]) -> Option<T> {
    if ages.is_empty() {
        return None;
    }
    let mid = ages.len() / 2;
    Some(*ages.select_nth_unstable(mid).1)
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

    #[test]
    fn idle_entries_expire_and_recent_ones_stay() {
        let mut t = SequenceTracker::default();
        let (old, new) = (Uuid::new_v4(), Uuid::new_v4());
        let start = Instant::now();
        t.observe_at(start, old, "quiet", 1, 1);
        let later = start + IDLE;
        t.observe_at(later, new, "busy", 1, 1);
        t.expire_at(later);
        assert_eq!(t.last_seq.len(), 1, "the idle origin went");
        assert!(t.on_channel.contains_key("busy") && !t.on_channel.contains_key("quiet"));
        assert_eq!(t.channel_entries, 1);
        // The forgotten origin starts afresh; the kept one still drops repeats.
        assert_eq!(
            t.observe_at(later, old, "quiet", 1, 1),
            Verdict::Deliver { missed: 0 }
        );
        assert_eq!(t.observe_at(later, new, "busy", 1, 1), Verdict::Duplicate);
    }

    #[test]
    fn past_the_bound_the_older_half_goes_not_everything() {
        let mut t = SequenceTracker::default();
        let start = Instant::now();
        let first = Uuid::new_v4();
        t.observe_at(start, first, "c", 1, 1);
        for i in 1..MAX_ORIGINS as u64 {
            t.observe_at(start + Duration::from_millis(i), Uuid::new_v4(), "c", 1, 1);
        }
        assert_eq!(t.last_seq.len(), MAX_ORIGINS);
        let newest = start + Duration::from_millis(MAX_ORIGINS as u64);
        t.observe_at(newest, Uuid::new_v4(), "c", 1, 1);
        assert!(
            t.last_seq.len() <= MAX_ORIGINS / 2 + 1,
            "{}",
            t.last_seq.len()
        );
        assert!(!t.last_seq.contains_key(&first), "the oldest went");
        assert!(t.last_seq.len() > 1000, "the newer half stayed");
    }

    #[test]
    fn forgetting_a_channel_keeps_the_entry_count() {
        let mut t = SequenceTracker::default();
        for o in [Uuid::new_v4(), Uuid::new_v4()] {
            t.observe(o, "a", 1, 1);
            t.observe(o, "b", 2, 1);
        }
        assert_eq!(t.channel_entries, 4);
        t.forget_channel("a");
        assert_eq!(t.channel_entries, 2);
        t.restart_channel("b");
        assert_eq!(t.channel_entries, 0);
    }

    #[test]
    fn per_channel_mode_takes_shards_out_of_order_and_still_drops_repeats() {
        let mut t = SequenceTracker::per_channel();
        let o = Uuid::new_v4();
        // seq 2 on shard B arrives before seq 1 on shard A: both are new.
        assert_eq!(t.observe(o, "b", 2, 1), Verdict::Deliver { missed: 0 });
        assert_eq!(t.observe(o, "a", 1, 1), Verdict::Deliver { missed: 0 });
        assert_eq!(t.observe(o, "a", 1, 1), Verdict::Duplicate);
        assert_eq!(t.observe(o, "a", 4, 3), Verdict::Deliver { missed: 1 });
        // After our own resubscription: repeats still dropped, no gap counted across it.
        t.restart_channel("a");
        assert_eq!(t.observe(o, "a", 4, 3), Verdict::Duplicate);
        assert_eq!(t.observe(o, "a", 9, 7), Verdict::Deliver { missed: 0 });
        assert_eq!(t.observe(o, "a", 10, 8), Verdict::Deliver { missed: 0 });
    }
}
