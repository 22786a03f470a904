//! What one connection received in one room, by offset and message id, and what that means once
//! the publisher says how many messages the room got: lost, duplicated, recovered, epoch changes.
//!
//! A room's offsets are +1 per message (README, "History and recovery"). A connection counts every
//! offset after the one it first joined at; when one is stepped over it asks for the gap with a
//! `join` + `since` (as the README tells clients to: a hub may shed under load, and the history
//! has it), and copies such a join brings of what it already had are repeats, not duplicates (the
//! README lets a re-join repeat; clients drop copies by id). A message the hub delivered without an
//! offset (Redis slow or down) is remembered by id, so the same message shown again later with its
//! offset counts once.

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
/// messages that arrive without an offset. Runs for every message: no allocation.
pub fn id_key(id: &str) -> u128 {
    let mut v = 0u128;
    let mut digits = 0;
    for b in id.bytes().filter(|b| *b != b'-') {
        match (b as char).to_digit(16) {
            Some(d) if digits < 32 => {
                v = v << 4 | u128::from(d);
                digits += 1;
            }
            _ => {
                digits = 0;
                break;
            }
        }
    }
    if digits == 32 {
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

/// One connection's view of one room. Kept small (two per connection): the lists a gap or an
/// offsetless message needs live in a box made only when one happens; the rarer counters are
/// 16-bit (they saturate).
#[derive(Debug, Clone, Default)]
pub struct RoomTrack {
    pub epoch: Epoch,
    /// Every offset up to this one was received (or came before the first join).
    pub contiguous: u64,
    rare: Option<Box<Rare>>,
    recent: [u32; RECENT],
    /// Different messages received.
    pub distinct: u32,
    /// Copies outside any recovery: what the hub promised not to send …
    pub duplicates: u16,
    /// … of which copies of a message a gap's recovery (a `since` join of a room the connection
    /// was in) had brought.
    pub duplicates_after_gap: u16,
    /// Copies a recovery brought of messages already received.
    pub repeats: u16,
    /// Times a gap opened while live (each one asked for with `since`).
    pub gaps: u16,
    /// Offsets a recovery could not bring.
    pub holes: u16,
    pub epoch_changes: u16,
    /// Messages first received without an offset and then again with one (allowed: same id).
    pub reshown: u16,
    /// Messages received without an offset (the hub delivered them before Redis stored them).
    pub without_offset: u16,
    recent_next: u8,
    /// A `since` join of this room is on its way: what it brings again is a repeat.
    pub recovering: bool,
    /// That join is for a gap, on a connection already in the room (not after a reconnect).
    pub in_place: bool,
}

/// The top bit of a remembered id: it came in the replay of a gap's recovery.
const FROM_GAP: u32 = 1 << 31;

#[derive(Debug, Clone, Default)]
struct Rare {
    /// Offsets received past a gap (above `contiguous + 1`), sorted.
    ahead: Vec<u64>,
    /// Ids of messages received without an offset and not seen again since.
    no_offset: Vec<u128>,
}

fn bump(n: &mut u16) {
    *n = n.saturating_add(1);
}

/// What a message did to the count.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    New,
    /// A message received before (a duplicate, or a repeat during a recovery).
    Copy,
    /// New, past a gap, with no recovery on its way: the caller asks for the gap (and sets
    /// `recovering`).
    Gap,
}

impl RoomTrack {
    /// `joined` with the room's epoch and offset (the highest stored): the first join, or the end
    /// of a `since` join, whose replay came before it. Returns the offsets the replay left out.
    pub fn joined(&mut self, epoch: &str, offset: u64) -> u64 {
        self.recovering = false;
        self.in_place = false;
        if self.epoch == Epoch::Unknown {
            self.epoch = Epoch::new(epoch);
            self.contiguous = offset;
            return 0;
        }
        if !self.epoch.is(epoch) {
            bump(&mut self.epoch_changes);
            self.restart(epoch, offset);
            return 0;
        }
        let ahead = self.ahead();
        let missing = (self.contiguous + 1..=offset)
            .filter(|o| !ahead.contains(o))
            .count() as u64;
        self.holes = self
            .holes
            .saturating_add(missing.min(u64::from(u16::MAX)) as u16);
        self.contiguous = self.contiguous.max(offset);
        if let Some(r) = &mut self.rare {
            r.ahead.retain(|&o| o > offset);
        }
        self.absorb();
        missing
    }

    /// A room message.
    pub fn message(&mut self, epoch: Option<&str>, offset: Option<u64>, id: &str) -> Verdict {
        let (Some(epoch), Some(offset)) = (epoch, offset) else {
            let key = id_key(id);
            let known = self
                .rare
                .as_ref()
                .is_some_and(|r| r.no_offset.contains(&key));
            let recent = self
                .recent
                .iter()
                .find(|r| **r & !FROM_GAP == key as u32 & !FROM_GAP);
            if known || recent.is_some() {
                if !self.recovering && recent.is_some_and(|r| r & FROM_GAP != 0) {
                    bump(&mut self.duplicates_after_gap);
                }
                self.copy();
                return Verdict::Copy;
            }
            self.rare.get_or_insert_default().no_offset.push(key);
            bump(&mut self.without_offset);
            self.distinct += 1;
            return Verdict::New;
        };
        if self.epoch == Epoch::Unknown {
            // A room joined by the hub itself (a personal room): counting starts at 0.
            self.epoch = Epoch::new(epoch);
        } else if !self.epoch.is(epoch) {
            bump(&mut self.epoch_changes);
            self.restart(epoch, offset);
            self.distinct += 1;
            self.remember(id);
            return Verdict::New;
        }
        let seen = offset <= self.contiguous || self.ahead().contains(&offset);
        if let Some(r) = &mut self.rare
            && let Some(i) = r.no_offset.iter().position(|k| *k == id_key(id))
        {
            // Received before without its offset: now the offset is known too.
            r.no_offset.swap_remove(i);
            bump(&mut self.reshown);
            if !seen {
                self.receive(offset);
            }
            self.tidy();
            return Verdict::Copy;
        }
        if seen {
            self.copy();
            return Verdict::Copy;
        }
        self.distinct += 1;
        self.remember(id);
        let gap = offset > self.contiguous + 1 && self.ahead().is_empty();
        self.receive(offset);
        if gap {
            bump(&mut self.gaps);
            if !self.recovering {
                return Verdict::Gap;
            }
        }
        Verdict::New
    }

    /// Where a `since` join of this room starts: after the last offset with none missing before it.
    pub fn since(&self) -> Option<(&str, u64)> {
        Some((self.epoch.as_str()?, self.contiguous))
    }

    fn ahead(&self) -> &[u64] {
        self.rare.as_ref().map_or(&[], |r| &r.ahead)
    }

    fn restart(&mut self, epoch: &str, offset: u64) {
        self.epoch = Epoch::new(epoch);
        self.contiguous = offset;
        if let Some(r) = &mut self.rare {
            r.ahead.clear();
        }
        self.tidy();
    }

    fn receive(&mut self, offset: u64) {
        if offset == self.contiguous + 1 {
            self.contiguous = offset;
            self.absorb();
        } else {
            let ahead = &mut self.rare.get_or_insert_default().ahead;
            if let Err(i) = ahead.binary_search(&offset) {
                ahead.insert(i, offset);
            }
        }
    }

    /// Offsets waiting past a gap that now follow on.
    fn absorb(&mut self) {
        if let Some(r) = &mut self.rare {
            while r.ahead.first() == Some(&(self.contiguous + 1)) {
                self.contiguous += 1;
                r.ahead.remove(0);
            }
        }
        self.tidy();
    }

    /// Drops the box once nothing is in it.
    fn tidy(&mut self) {
        if self
            .rare
            .as_ref()
            .is_some_and(|r| r.ahead.is_empty() && r.no_offset.is_empty())
        {
            self.rare = None;
        }
    }

    fn copy(&mut self) {
        if self.recovering {
            bump(&mut self.repeats);
        } else {
            bump(&mut self.duplicates);
        }
    }

    fn remember(&mut self, id: &str) {
        let tag = if self.recovering && self.in_place {
            FROM_GAP
        } else {
            0
        };
        self.recent[usize::from(self.recent_next) % RECENT] = (id_key(id) as u32 & !FROM_GAP) | tag;
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
            duplicated_after_gap: u64::from(self.duplicates_after_gap),
            gaps: u64::from(self.gaps),
            holes: u64::from(self.holes),
            repeats: u64::from(self.repeats),
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
    /// Of the duplicates, copies (without offset) of messages a gap's recovery had brought.
    pub duplicated_after_gap: u64,
    /// Copies a recovery brought again (allowed: dropped by id).
    pub repeats: u64,
    /// Gaps seen live, each recovered with `since` …
    pub gaps: u64,
    /// … and offsets no recovery brought.
    pub holes: u64,
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
        self.duplicated_after_gap += o.duplicated_after_gap;
        self.holes += o.holes;
        self.repeats += o.repeats;
        self.epoch_changes += o.epoch_changes;
        self.reshown += o.reshown;
        self.without_offset += o.without_offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    fn msg(t: &mut RoomTrack, offset: u64) -> Verdict {
        t.message(Some("e1"), Some(offset), &format!("id{offset}"))
    }

    #[test]
    fn in_order_after_the_first_join_is_all_received() {
        let mut t = RoomTrack::default();
        assert_eq!(t.joined("e1", 7), 0);
        for o in 8..=10 {
            assert_eq!(msg(&mut t, o), Verdict::New);
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
    fn a_gap_asks_for_a_recovery_whose_repeats_are_not_duplicates() {
        let mut t = RoomTrack::default();
        t.joined("e1", 0);
        assert_eq!(msg(&mut t, 1), Verdict::New);
        assert_eq!(msg(&mut t, 1), Verdict::Copy, "a repeat outside a recovery");
        assert_eq!(msg(&mut t, 4), Verdict::Gap, "2 and 3 stepped over");
        assert_eq!(t.since(), Some(("e1", 1)));
        t.recovering = true;
        assert_eq!(
            msg(&mut t, 5),
            Verdict::New,
            "no second recovery while one is on its way"
        );
        // The replay: 2 to 5, then joined at 5.
        for o in 2..=5 {
            msg(&mut t, o);
        }
        assert_eq!(t.joined("e1", 5), 0);
        assert!(!t.recovering);
        assert_eq!(t.contiguous, 5);
        let c = t.count(5);
        assert_eq!(
            (c.received, c.lost, c.duplicated, c.repeats, c.gaps, c.holes),
            (5, 0, 1, 2, 1, 0)
        );
    }

    #[test]
    fn what_a_recovery_cannot_bring_is_lost() {
        let mut t = RoomTrack::default();
        t.joined("e1", 0);
        msg(&mut t, 1);
        assert_eq!(msg(&mut t, 4), Verdict::Gap);
        t.recovering = true;
        // recovered: false — nothing replayed, joined at 6 (5 and 6 also never came).
        assert_eq!(t.joined("e1", 6), 4);
        let c = t.count(6);
        assert_eq!((c.received, c.lost, c.holes), (2, 4, 4));
        assert_eq!(t.joined("e2", 0), 0);
        assert_eq!(t.count(6).epoch_changes, 1);
    }

    #[test]
    fn a_reconnect_resumes_from_the_last_offset_without_a_gap() {
        let mut t = RoomTrack::default();
        t.joined("e1", 0);
        msg(&mut t, 1);
        t.recovering = true; // reconnected, joined with since 1
        msg(&mut t, 2);
        msg(&mut t, 3);
        assert_eq!(t.joined("e1", 3), 0);
        assert_eq!(t.count(3).lost, 0);
    }

    #[test]
    fn without_an_offset_then_with_it_counts_once() {
        let mut t = RoomTrack::default();
        t.joined("e1", 0);
        assert_eq!(t.message(None, None, ID), Verdict::New);
        // The next one shows offset 1 was taken by that one: a gap, recovered.
        assert_eq!(msg(&mut t, 2), Verdict::Gap);
        t.recovering = true;
        assert_eq!(
            t.message(Some("e1"), Some(1), ID),
            Verdict::Copy,
            "shown again with its offset"
        );
        assert_eq!(t.joined("e1", 2), 0);
        let c = t.count(2);
        assert_eq!(
            (
                c.received,
                c.duplicated,
                c.reshown,
                c.lost,
                c.without_offset
            ),
            (2, 0, 1, 0, 1)
        );
        assert_eq!(t.message(None, None, "y"), Verdict::New);
        assert_eq!(t.message(None, None, "y"), Verdict::Copy);
        assert_eq!(t.count(3).duplicated, 1);
    }

    #[test]
    fn a_copy_without_offset_after_its_replay_is_a_duplicate() {
        // Seen in a run: a rejoin's replay brings offset 2, then the hub delivers the same
        // message live without an offset (Redis was slow).
        let mut t = RoomTrack::default();
        t.joined("e1", 0);
        t.message(Some("e1"), Some(1), "a");
        t.recovering = true;
        assert_eq!(t.message(Some("e1"), Some(2), ID), Verdict::New);
        assert_eq!(t.joined("e1", 2), 0);
        assert_eq!(t.message(None, None, ID), Verdict::Copy);
        let c = t.count(2);
        assert_eq!(
            (c.received, c.duplicated, c.unexpected, c.without_offset),
            (2, 1, 0, 0)
        );
        assert_eq!(
            c.duplicated_after_gap, 0,
            "that replay followed a reconnect"
        );
        // The same after a gap's recovery on a connection that stayed in the room.
        assert_eq!(msg(&mut t, 4), Verdict::Gap);
        (t.recovering, t.in_place) = (true, true);
        assert_eq!(t.message(Some("e1"), Some(3), "three"), Verdict::New);
        t.joined("e1", 4);
        assert!(!t.in_place);
        assert_eq!(t.message(None, None, "three"), Verdict::Copy);
        let c = t.count(4);
        assert_eq!((c.duplicated, c.duplicated_after_gap), (2, 1));
        // Only the last few are remembered: a copy of an older one counts as one more message.
        for o in 5..=5 + RECENT as u64 {
            msg(&mut t, o);
        }
        assert_eq!(t.message(None, None, ID), Verdict::New);
        assert_eq!(t.count(5 + RECENT as u64).unexpected, 1);
    }

    #[test]
    fn a_room_the_hub_joined_counts_from_zero() {
        let mut t = RoomTrack::default();
        assert_eq!(t.message(Some("e9"), Some(2), "b"), Verdict::Gap);
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
        assert_ne!(
            id_key(ID),
            id_key(&format!("{ID}0")),
            "33 digits are not a UUID"
        );
        assert_ne!(id_key("0"), 0);
        assert!(std::mem::size_of::<Epoch>() <= 24);
    }
}
