//! What one connection received in one room, by offset and message id, and what that means once
//! the publisher says how many messages the room got: lost, duplicated, gaps, epoch changes.
//!
//! A room's offsets are +1 per message (README, "History and recovery"), and a `since` join replays
//! everything after the offset a client last saw, so a connection should see every offset after the
//! one it first joined at, once, in order: a step back is a duplicate, a step over is a gap. A
//! message the hub delivered without an offset (Redis slow or down) is remembered by id, so the same
//! message shown again later with its offset counts once.

use serde::{Deserialize, Serialize};

/// A room's epoch as the hub sent it, inline when short (the hub's are 8 hex digits): one per room
/// per connection, a heap string each would be half a million allocations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Epoch {
    #[default]
    Unknown,
    Inline(u8, [u8; 22]),
    Heap(Box<str>),
}

impl Epoch {
    pub fn new(s: &str) -> Self {
        if s.len() <= 22 {
            let mut b = [0u8; 22];
            b[..s.len()].copy_from_slice(s.as_bytes());
            Epoch::Inline(s.len() as u8, b)
        } else {
            Epoch::Heap(s.into())
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Epoch::Unknown => None,
            // Built from a &str, cut at its own length: always valid UTF-8.
            Epoch::Inline(len, b) => std::str::from_utf8(&b[..usize::from(*len)]).ok(),
            Epoch::Heap(s) => Some(s),
        }
    }

    fn is(&self, s: &str) -> bool {
        self.as_str() == Some(s)
    }
}

/// A message id folded to 128 bits (a UUID's hex digits; anything else hashed), for the rare
/// messages that arrive without an offset.
pub fn id_key(id: &str) -> u128 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if let (32, Ok(v)) = (hex.len(), u128::from_str_radix(&hex, 16)) {
        return v;
    }
    // FNV-1a, widened: distinct enough to tell a handful of pending ids apart.
    id.bytes()
        .fold(0x6c62272e07bb014262b821756295c58d_u128, |h, b| {
            (h ^ u128::from(b)).wrapping_mul(0x0000000001000000000000000000013B)
        })
}

/// Ids of the last messages received with an offset: a copy of one of them arriving without an
/// offset (delivered at once while Redis was slow, next to its replay) is a duplicate.
const RECENT: usize = 4;

/// One connection's view of one room.
#[derive(Debug, Clone, Default)]
pub struct RoomTrack {
    pub epoch: Epoch,
    /// Highest offset seen (or the room's offset when first joined).
    pub last: u64,
    /// Different messages received.
    pub distinct: u32,
    pub duplicates: u32,
    /// Offsets stepped over: each one a message this connection will never get.
    pub gaps: u32,
    pub epoch_changes: u32,
    /// Ids of messages received without an offset and not seen again since (usually none).
    no_offset: Vec<u128>,
    /// Messages first received without an offset and then again with one (allowed: same id).
    pub reshown: u32,
    /// Messages received without an offset (the hub delivered them before Redis stored them; the
    /// offset they got then is a gap here, not a loss).
    pub without_offset: u32,
    recent: [u64; RECENT],
    recent_next: u8,
}

/// What a `joined` did to the room's count.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    First,
    /// A later join (after a reconnect): the replay before it should have brought `last` up to
    /// the room's offset; what it did not is a gap.
    Again {
        missing: u64,
    },
    EpochChanged,
}

impl RoomTrack {
    /// `joined` with the room's epoch and offset (the highest stored).
    pub fn joined(&mut self, epoch: &str, offset: u64) -> Joined {
        if self.epoch == Epoch::Unknown {
            self.epoch = Epoch::new(epoch);
            self.last = offset;
            return Joined::First;
        }
        if !self.epoch.is(epoch) {
            self.epoch_changes += 1;
            self.epoch = Epoch::new(epoch);
            self.last = offset;
            return Joined::EpochChanged;
        }
        let missing = offset.saturating_sub(self.last);
        self.gaps += missing as u32;
        self.last = self.last.max(offset);
        Joined::Again { missing }
    }

    /// A room message; true when it is one this connection had not received before.
    pub fn message(&mut self, epoch: Option<&str>, offset: Option<u64>, id: &str) -> bool {
        let (Some(epoch), Some(offset)) = (epoch, offset) else {
            let key = id_key(id);
            if self.no_offset.contains(&key) || self.recent.contains(&(key as u64)) {
                self.duplicates += 1;
                return false;
            }
            self.no_offset.push(key);
            self.without_offset += 1;
            self.distinct += 1;
            return true;
        };
        if !self.no_offset.is_empty() {
            let key = id_key(id);
            if let Some(i) = self.no_offset.iter().position(|k| *k == key) {
                self.no_offset.swap_remove(i);
                self.reshown += 1;
                self.last = self.last.max(offset);
                return false;
            }
        }
        if self.epoch == Epoch::Unknown {
            // A room joined by the hub itself (a personal room): counting starts at 0.
            self.epoch = Epoch::new(epoch);
        } else if !self.epoch.is(epoch) {
            self.epoch_changes += 1;
            self.epoch = Epoch::new(epoch);
            self.last = offset;
            self.distinct += 1;
            self.remember(id);
            return true;
        }
        if offset <= self.last {
            self.duplicates += 1;
            return false;
        }
        self.gaps += (offset - self.last - 1) as u32;
        self.last = offset;
        self.distinct += 1;
        self.remember(id);
        true
    }

    fn remember(&mut self, id: &str) {
        self.recent[usize::from(self.recent_next) % RECENT] = id_key(id) as u64;
        self.recent_next = self.recent_next.wrapping_add(1);
    }

    /// The count against what the publisher sent this room after the connection first joined it.
    pub fn count(&self, expected: u64) -> RoomCount {
        let distinct = u64::from(self.distinct);
        RoomCount {
            expected,
            received: distinct,
            lost: expected.saturating_sub(distinct),
            unexpected: distinct.saturating_sub(expected),
            duplicated: u64::from(self.duplicates),
            gaps: u64::from(self.gaps),
            epoch_changes: u64::from(self.epoch_changes),
            reshown: u64::from(self.reshown),
            without_offset: u64::from(self.without_offset),
        }
    }
}

/// Counts over connections (summed), per kind of room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCount {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    /// Received but never sent to this room (misrouted, or an epoch reset counted twice).
    pub unexpected: u64,
    pub duplicated: u64,
    pub gaps: u64,
    pub epoch_changes: u64,
    pub reshown: u64,
    pub without_offset: u64,
}

impl std::ops::AddAssign for RoomCount {
    fn add_assign(&mut self, o: Self) {
        self.expected += o.expected;
        self.received += o.received;
        self.lost += o.lost;
        self.unexpected += o.unexpected;
        self.duplicated += o.duplicated;
        self.gaps += o.gaps;
        self.epoch_changes += o.epoch_changes;
        self.reshown += o.reshown;
        self.without_offset += o.without_offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    #[test]
    fn in_order_after_the_first_join_is_all_received() {
        let mut t = RoomTrack::default();
        assert_eq!(t.joined("e1", 7), Joined::First);
        for o in 8..=10 {
            assert!(t.message(Some("e1"), Some(o), &format!("id{o}")));
        }
        assert_eq!(
            t.count(3),
            RoomCount {
                expected: 3,
                received: 3,
                ..RoomCount::default()
            }
        );
    }

    #[test]
    fn repeats_steps_over_and_the_tail_are_counted() {
        let mut t = RoomTrack::default();
        t.joined("e1", 0);
        assert!(t.message(Some("e1"), Some(1), "a"));
        assert!(!t.message(Some("e1"), Some(1), "a"), "a repeat");
        assert!(t.message(Some("e1"), Some(4), "d"), "2 and 3 stepped over");
        let c = t.count(5); // 5 sent: 2, 3 and 5 never came
        assert_eq!((c.received, c.lost, c.duplicated, c.gaps), (2, 3, 1, 2));
    }

    #[test]
    fn a_recovered_rejoin_continues_and_an_unrecovered_one_is_a_gap() {
        let mut t = RoomTrack::default();
        t.joined("e1", 0);
        t.message(Some("e1"), Some(1), "a");
        // Reconnected: the replay brought 2 and 3, then `joined` at 3.
        t.message(Some("e1"), Some(2), "b");
        t.message(Some("e1"), Some(3), "c");
        assert_eq!(t.joined("e1", 3), Joined::Again { missing: 0 });
        // Reconnected again, nothing replayed (recovered: false) while 4 and 5 were stored.
        assert_eq!(t.joined("e1", 5), Joined::Again { missing: 2 });
        let c = t.count(5);
        assert_eq!((c.received, c.lost, c.gaps, c.duplicated), (3, 2, 2, 0));
        assert_eq!(t.joined("e2", 0), Joined::EpochChanged);
        assert_eq!(t.count(5).epoch_changes, 1);
    }

    #[test]
    fn without_an_offset_then_with_it_counts_once() {
        let mut t = RoomTrack::default();
        t.joined("e1", 0);
        assert!(t.message(None, None, ID));
        assert!(
            !t.message(Some("e1"), Some(1), ID),
            "the same message with its offset"
        );
        assert!(t.message(Some("e1"), Some(2), "x"));
        let c = t.count(2);
        assert_eq!((c.received, c.duplicated, c.reshown, c.lost), (2, 0, 1, 0));
        assert!(t.message(None, None, "y"));
        assert!(
            !t.message(None, None, "y"),
            "an offsetless repeat is a duplicate"
        );
        assert_eq!(t.count(3).duplicated, 1);
    }

    #[test]
    fn a_copy_without_offset_after_its_replay_is_a_duplicate() {
        // Seen in a run: a rejoin's replay brings offset 2, then the hub delivers the same
        // message live without an offset (Redis was slow).
        let mut t = RoomTrack::default();
        t.joined("e1", 0);
        t.message(Some("e1"), Some(1), "a");
        assert!(t.message(Some("e1"), Some(2), ID));
        assert!(!t.message(None, None, ID));
        let c = t.count(2);
        assert_eq!(
            (c.received, c.duplicated, c.unexpected, c.without_offset),
            (2, 1, 0, 0)
        );
        // Only the last few are remembered: a copy of an older one counts as one more message.
        for o in 3..=3 + RECENT as u64 {
            t.message(Some("e1"), Some(o), &format!("m{o}"));
        }
        assert!(t.message(None, None, ID));
        assert_eq!(t.count(2 + 1 + RECENT as u64).unexpected, 1);
    }

    #[test]
    fn a_room_the_hub_joined_counts_from_zero() {
        let mut t = RoomTrack::default();
        assert!(t.message(Some("e9"), Some(2), "b"));
        assert_eq!(t.count(2).lost, 1, "offset 1 never came");
        assert_eq!(t.epoch.as_str(), Some("e9"));
    }

    #[test]
    fn epochs_and_ids() {
        assert_eq!(Epoch::new("9f1c2a3b").as_str(), Some("9f1c2a3b"));
        let long = "x".repeat(40);
        assert_eq!(Epoch::new(&long).as_str(), Some(long.as_str()));
        assert_eq!(Epoch::Unknown.as_str(), None);
        assert_eq!(id_key(ID), 0x9f1e2d3c4b5a69788796a5b4c3d2e1f0);
        assert_ne!(id_key("a"), id_key("b"));
        assert!(std::mem::size_of::<Epoch>() <= 24);
    }
}
