//! Catching a room up after its subscription was lost. Pub/sub delivers only to who is
//! subscribed: what other hubs publish while this hub's connection is down (or while its slot
//! moves to another master) never reaches it. A gap in a room's offsets shows its members what
//! to recover (`join` with `since`), but nothing shows them that the room's *last* messages went
//! missing — in a personal room, often its only one.
//!
//! So the subscriber keeps, per room channel, the last stored offset it delivered here (its
//! [`Position`]); before any came, the offset a join here read, or where the room stood when its
//! channel was subscribed (read just after: a room the hub put a client in at connect has no
//! join). When a lost channel is subscribed again, it reads the room's history after
//! that offset and delivers what it finds; the room's live messages that arrive meanwhile are
//! held and follow, so every member gets the room's messages in offset order, each once. A read
//! that fails or a room too busy to hold for lets the held messages go: their offsets then show
//! the gap, which clients recover as after any other. A read Redis did not answer is made again
//! from where the room then stands, up to [`READ_TRIES`] reads: a loaded hub's read can time out
//! while Redis is fine, and a room whose last message is the missing one has no later message to
//! show its members the gap.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;

use super::channels::{Channels, Target};
use crate::history::{History, Stored};
use crate::hub::ClientId;
use crate::namespace::Namespaces;
use crate::protocol::{Frame, Replay};

/// Live messages held per room while its history is read; past it the room is not held for.
const HELD_MAX: usize = 512;

/// History reads on their way at once, per batch of channels subscribed again.
const READS_AT_ONCE: usize = 16;

/// Reads of one room's catch-up, in all, while Redis does not answer them (each waits up to
/// `redis_timeout`). Past them the catch-up gives up and counts `catch_up_failed`.
const READ_TRIES: u8 = 4;

/// A channel's or an epoch's name as the positions keep it: 16 bytes a room instead of two
/// strings (every subscribed room has a position; a 64-bit collision between two of a hub's
/// rooms is not a concern at any number of rooms a hub holds).
pub(super) fn hashed(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

/// The last stored message delivered here for a room: its offset, and its epoch [`hashed`]. The
/// epoch of "" (hashed): nothing was stored when it was read (every message stored since is new,
/// whatever its epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    pub epoch: u64,
    pub offset: u64,
}

impl Position {
    fn nothing_stored(&self) -> bool {
        self.offset == 0 && self.epoch == hashed("")
    }
}

/// A message to deliver to a room's members, but its sender; `epoch` for a stored one (its
/// offset is the frame's).
#[derive(Debug)]
pub(super) struct Held {
    pub frame: Frame,
    pub sender: Option<ClientId>,
    pub epoch: Option<u64>,
}

impl Held {
    /// Whether this is `position`'s message or an older one of its epoch.
    fn covered_by(&self, position: &Position) -> bool {
        self.epoch == Some(position.epoch)
            && self.frame.offset().is_some_and(|o| o <= position.offset)
    }
}

#[derive(Debug, Default)]
struct Reading {
    held: Vec<Held>,
    /// Subscribed again (after another loss) while this read was on its way: read once more.
    again: bool,
    /// Reads of this catch-up that Redis did not answer.
    unanswered: u8,
}

#[derive(Debug, Default)]
pub(super) struct CatchUp {
    /// By channel, [`hashed`].
    positions: HashMap<u64, Position>,
    /// Channels lost that have a position, until they are subscribed again.
    lost: HashSet<String>,
    /// Channels whose history is being read, with their live messages meanwhile.
    reading: HashMap<String, Reading>,
    /// By channel: the last message a read delivered, until a live one past it comes. A message
    /// published just before the read reaches Redis is in the read's answer, and its live copy
    /// may still be on its way over the pub/sub connection (another socket, no order between
    /// the two): that copy must not go out again.
    caught: HashMap<u64, Position>,
}

/// What a finished read leaves to do.
#[derive(Debug, Default)]
pub(super) struct Finished {
    /// To deliver first: what the history had after the position.
    pub missed: Vec<Held>,
    /// Then: the live messages held meanwhile that the history did not have.
    pub held: Vec<Held>,
    /// The read could not be used and is not made again: it failed [`READ_TRIES`] times, the
    /// room's epoch changed, or more were missing than a read may bring (`recovery_max`).
    pub failed: bool,
    /// Read again from here: the channel was lost and subscribed again meanwhile, or Redis did
    /// not answer this read.
    pub again: Option<Position>,
}

impl CatchUp {
    /// A stored message of `channel` (`offset` of `epoch`) went to the room's members: the
    /// subscriber calls this for every one it delivers, [`CatchUp::finish`] for its own.
    pub fn delivered(&mut self, channel: &str, offset: u64, epoch: &str) {
        self.moved_to(hashed(channel), offset, hashed(epoch));
    }

    fn moved_to(&mut self, channel: u64, offset: u64, epoch: u64) {
        match self.positions.get_mut(&channel) {
            Some(p) if p.epoch == epoch => p.offset = p.offset.max(offset),
            Some(p) => *p = Position { epoch, offset },
            None => {
                self.positions.insert(channel, Position { epoch, offset });
            }
        }
    }

    /// These channels' subscriptions are gone: what is published before they are back is
    /// missed.
    pub fn lost(&mut self, channels: &[String]) {
        for channel in channels {
            if self.positions.contains_key(&hashed(channel)) {
                self.lost.insert(channel.clone());
            }
        }
    }

    /// These channels are subscribed again: the ones that were lost are to be read from their
    /// position, and are held from now on.
    pub fn subscribed(&mut self, channels: &[String]) -> Vec<(String, Position)> {
        let mut reads = Vec::new();
        for channel in channels {
            if !self.lost.remove(channel) {
                continue;
            }
            if let Some(reading) = self.reading.get_mut(channel) {
                reading.again = true;
                continue;
            }
            if let Some(position) = self.positions.get(&hashed(channel)) {
                self.reading.insert(channel.clone(), Reading::default());
                reads.push((channel.clone(), *position));
            }
        }
        reads
    }

    /// A join here read `channel`'s room through `from` after it was subscribed: where a
    /// catch-up starts if the subscription is lost before the room's next message comes (a
    /// room's first message after a loss is as lost as its last). What came live since a
    /// position was set says more, and stays.
    pub fn joined(&mut self, channel: &str, from: Position) {
        match self.positions.get_mut(&hashed(channel)) {
            Some(p) if p.epoch == from.epoch => {}
            Some(p) => *p = from,
            None => {
                self.positions.insert(hashed(channel), from);
            }
        }
    }

    /// A join here went on before `channel` was subscribed, its history read covering it
    /// through `from`. Not subscribed yet: the first read once it is starts at the earliest such
    /// join (a later joiner skips what its own replay had). Subscribed since: the read starts at
    /// the last message delivered here live, or at `from` when none was — anything the joiner
    /// missed below a message delivered live shows as a gap in its offsets. Returns the read to
    /// start now, if any.
    pub fn joined_early(
        &mut self,
        channel: &str,
        from: Position,
        subscribed: bool,
    ) -> Option<(String, Position)> {
        let position = match self.positions.get_mut(&hashed(channel)) {
            Some(p) if p.epoch == from.epoch => {
                // Subscribed: what is past the position was delivered to nobody here yet.
                if !subscribed {
                    p.offset = p.offset.min(from.offset);
                }
                *p
            }
            Some(p) => {
                *p = from;
                from
            }
            None => {
                self.positions.insert(hashed(channel), from);
                from
            }
        };
        if !subscribed {
            self.lost.insert(channel.to_owned());
            return None;
        }
        // A read on its way started no later than this: it brings the join's part too.
        if self.reading.contains_key(channel) {
            return None;
        }
        self.reading.insert(channel.to_owned(), Reading::default());
        Some((channel.to_owned(), position))
    }

    /// Of `channels`, subscribed now, those with no position yet: where each stands is read, so
    /// that a loss before their next message still has a place to read from.
    pub fn without_position(&self, channels: &[String]) -> Vec<String> {
        channels
            .iter()
            .filter(|c| !self.positions.contains_key(&hashed(c)))
            .cloned()
            .collect()
    }

    /// Where `channel`'s room stood just after it was subscribed, unless something said more
    /// meanwhile (a message delivered, a join's read).
    pub fn floor(&mut self, channel: &str, at: Position) {
        self.positions.entry(hashed(channel)).or_insert(at);
    }

    /// Whether `channel`'s live messages are held now (its history is being read).
    pub fn holding(&self, channel: &str) -> bool {
        self.reading.contains_key(channel)
    }

    /// Holds a live message of `channel` for the read on its way: `None`. A room past
    /// [`HELD_MAX`] is given up instead: everything held comes back to deliver now, `message`
    /// last, and the read's result will be dropped.
    pub fn hold(&mut self, channel: &str, message: Held) -> Option<Vec<Held>> {
        let Some(reading) = self.reading.get_mut(channel) else {
            return Some(vec![message]);
        };
        if reading.held.len() < HELD_MAX {
            reading.held.push(message);
            return None;
        }
        let mut all = self
            .reading
            .remove(channel)
            .map(|r| r.held)
            .unwrap_or_default();
        all.push(message);
        self.moved_past(channel, &all);
        Some(all)
    }

    /// The read of `channel` came back (`None`: it failed). What to deliver: the stored messages
    /// after the position, then the held ones the history did not already have. The position
    /// moves past them all.
    pub fn finish(&mut self, channel: &str, read: Option<Stored>) -> Finished {
        let Some(reading) = self.reading.remove(channel) else {
            // Given up while on its way (too busy, or the channel was left).
            return Finished::default();
        };
        let unanswered = if read.is_none() {
            reading.unanswered + 1
        } else {
            0
        };
        let mut done = Finished::default();
        match (read, self.positions.get(&hashed(channel)).copied()) {
            (Some(stored), Some(from))
                if hashed(&stored.epoch) == from.epoch || from.nothing_stored() =>
            {
                let epoch = hashed(&stored.epoch);
                for frame in stored.entries {
                    if frame.offset().is_some_and(|o| o > from.offset) {
                        done.missed.push(Held {
                            frame,
                            sender: None,
                            epoch: Some(epoch),
                        });
                    }
                }
                // More missing than `recovery_max`: the read brings none of them.
                done.failed = stored.top > from.offset && done.missed.is_empty();
                let top = Position {
                    epoch,
                    offset: done
                        .missed
                        .last()
                        .and_then(|h| h.frame.offset())
                        .unwrap_or(from.offset),
                };
                done.held = reading.held;
                done.held.retain(|h| !h.covered_by(&top));
            }
            _ => {
                done.failed = true;
                done.held = reading.held;
            }
        }
        if let Some(last) = done.missed.last()
            && let (Some(offset), Some(epoch)) = (last.frame.offset(), last.epoch)
        {
            self.caught
                .insert(hashed(channel), Position { epoch, offset });
        }
        self.moved_past(channel, &done.missed);
        self.moved_past(channel, &done.held);
        let try_again = unanswered > 0 && unanswered < READ_TRIES;
        if (reading.again || try_again)
            && let Some(from) = self.positions.get(&hashed(channel))
        {
            done.again = Some(*from);
            done.failed = false;
            let unanswered = if reading.again { 0 } else { unanswered };
            self.reading.insert(
                channel.to_owned(),
                Reading {
                    unanswered,
                    ..Reading::default()
                },
            );
        }
        done
    }

    /// `channel`'s position after `delivered`, which go out now.
    fn moved_past(&mut self, channel: &str, delivered: &[Held]) {
        for held in delivered {
            if let (Some(offset), Some(epoch)) = (held.frame.offset(), held.epoch) {
                self.moved_to(hashed(channel), offset, epoch);
            }
        }
    }

    /// Whether a live message of `channel` (`offset` of `epoch`) was delivered already by a read
    /// of its history. Live messages come in offset order, so once one is past what the read
    /// delivered, no older copy can follow and the mark goes.
    pub fn caught_already(&mut self, channel: &str, offset: u64, epoch: &str) -> bool {
        // Called for every live message: almost always no read left a mark.
        if self.caught.is_empty() {
            return false;
        }
        let key = hashed(channel);
        let Some(caught) = self.caught.get(&key) else {
            return false;
        };
        if caught.epoch == hashed(epoch) && offset <= caught.offset {
            return true;
        }
        self.caught.remove(&key);
        false
    }

    /// `channel` was left (no local member): nothing of it is kept.
    pub fn forget(&mut self, channel: &str) {
        self.positions.remove(&hashed(channel));
        self.caught.remove(&hashed(channel));
        self.lost.remove(channel);
        self.reading.remove(channel);
    }
}

/// Reads rooms' histories for [`CatchUp`].
#[derive(Debug, Clone)]
pub(super) struct Reader {
    history: History,
    namespaces: Namespaces,
}

impl Reader {
    pub fn new(history: History, namespaces: Namespaces) -> Self {
        Reader {
            history,
            namespaces,
        }
    }

    /// Where each channel's room stands now (its epoch and last offset), a few reads at a time;
    /// rooms that keep no history, and reads that fail, are left out.
    pub async fn tops(self, channels: Channels, wanted: Vec<String>) -> Vec<(String, Position)> {
        let reader = &self;
        let channels = &channels;
        futures_util::stream::iter(wanted)
            .map(|channel| async move {
                let Some(Target::Room(room)) = channels.target(&channel) else {
                    return None;
                };
                let policy = reader.namespaces.policy(&room);
                let (epoch, offset) = reader.history.top(&room, policy).await?;
                let epoch = hashed(&epoch);
                Some((channel, Position { epoch, offset }))
            })
            .buffer_unordered(READS_AT_ONCE)
            .filter_map(std::future::ready)
            .collect()
            .await
    }

    /// Each channel's room history after its position, a few reads at a time; `None` for one
    /// that failed.
    pub async fn read(
        self,
        channels: Channels,
        reads: Vec<(String, Position)>,
    ) -> Vec<(String, Option<Stored>)> {
        let reader = &self;
        let channels = &channels;
        futures_util::stream::iter(reads)
            .map(|(channel, from)| async move {
                let Some(Target::Room(room)) = channels.target(&channel) else {
                    return (channel, None);
                };
                let policy = reader.namespaces.policy(&room);
                let since = Replay::Since {
                    // The script reads by offset; `finish` compares the epochs.
                    epoch: String::new(),
                    offset: from.offset,
                };
                let stored = reader.history.read(&room, policy, &since).await;
                (channel, stored)
            })
            .buffer_unordered(READS_AT_ONCE)
            .collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_frame(offset: u64, epoch: &str) -> Frame {
        Frame::stored_from(&format!("{{\"content\":\"m{offset}\"}}"), offset, epoch)
    }

    fn live(offset: u64, epoch: &str) -> Held {
        Held {
            frame: stored_frame(offset, epoch),
            sender: None,
            epoch: Some(hashed(epoch)),
        }
    }

    fn history(epoch: &str, offsets: std::ops::RangeInclusive<u64>) -> Stored {
        Stored {
            epoch: epoch.to_owned(),
            top: *offsets.end(),
            entries: offsets.map(|o| stored_frame(o, epoch)).collect(),
        }
    }

    fn offsets(held: &[Held]) -> Vec<u64> {
        held.iter().filter_map(|h| h.frame.offset()).collect()
    }

    /// Everything a finished read delivers, in order.
    fn delivered(done: &Finished) -> Vec<u64> {
        [offsets(&done.missed), offsets(&done.held)].concat()
    }

    /// `c` delivered up to 3 of `e`, then lost and subscribed again: its read is on its way.
    fn reading() -> CatchUp {
        let mut c = CatchUp::default();
        c.delivered("c", 3, "e");
        c.lost(&["c".to_owned(), "never-delivered".to_owned()]);
        let reads = c.subscribed(&["c".to_owned(), "never-delivered".to_owned()]);
        let from = Position {
            epoch: hashed("e"),
            offset: 3,
        };
        assert_eq!(
            reads,
            vec![("c".to_owned(), from)],
            "only rooms with a position"
        );
        assert!(c.holding("c"));
        c
    }

    #[test]
    fn what_was_missed_comes_first_then_the_held_live_ones_the_history_did_not_have() {
        let mut c = reading();
        for offset in [5, 6, 7] {
            assert!(c.hold("c", live(offset, "e")).is_none(), "held");
        }
        let done = c.finish("c", Some(history("e", 2..=6)));
        assert_eq!(delivered(&done), vec![4, 5, 6, 7]);
        assert_eq!((done.missed.len(), done.failed), (3, false));
        assert!(!c.holding("c"));
        // The position moved past everything delivered: a later loss reads from 7.
        c.lost(&["c".to_owned()]);
        assert_eq!(c.subscribed(&["c".to_owned()])[0].1.offset, 7);
    }

    /// The read's answer and the live copy of its last message come over two sockets: the live
    /// copy may come after the read finished, and must not go out a second time.
    #[test]
    fn a_live_copy_of_what_a_read_delivered_is_dropped_until_a_newer_one_comes() {
        let mut c = reading();
        let done = c.finish("c", Some(history("e", 2..=6)));
        assert_eq!(delivered(&done), vec![4, 5, 6]);
        assert!(c.caught_already("c", 6, "e"), "the read had 6");
        assert!(c.caught_already("c", 5, "e"));
        assert!(!c.caught_already("c", 7, "e"), "7 is new");
        assert!(
            !c.caught_already("c", 6, "e"),
            "past 7 nothing older comes: the mark is gone"
        );
        assert!(!c.caught_already("d", 1, "e"), "a room never read");

        let mut c = reading();
        c.finish("c", Some(history("e", 2..=6)));
        assert!(!c.caught_already("c", 6, "new"), "a new epoch is new");
        assert!(!c.caught_already("c", 6, "e"), "and the mark is gone");
    }

    #[test]
    fn a_failed_read_or_a_new_epoch_lets_the_held_messages_go_as_they_are() {
        let mut c = reading();
        assert!(c.hold("c", live(9, "e")).is_none());
        let done = c.finish("c", None);
        assert_eq!((delivered(&done), done.failed), (vec![9], false));
        assert_eq!(done.again, Some(at(9)), "read again past what went");

        let mut c = reading();
        assert!(c.hold("c", live(1, "new")).is_none());
        let done = c.finish("c", Some(history("new", 1..=1)));
        assert_eq!((delivered(&done), done.failed), (vec![1], true));

        // Too many missing: the read has the top but brings no entries.
        let mut c = reading();
        let mut too_many = history("e", 4..=900);
        too_many.entries.clear();
        let done = c.finish("c", Some(too_many));
        assert!(delivered(&done).is_empty() && done.failed);
    }

    #[test]
    fn a_read_redis_did_not_answer_is_made_again_a_few_times_then_given_up() {
        let mut c = reading();
        for _ in 1..READ_TRIES {
            let done = c.finish("c", None);
            assert_eq!((done.again, done.failed), (Some(at(3)), false));
            assert!(c.holding("c"), "held for the next read");
        }
        let done = c.finish("c", None);
        assert_eq!((done.again, done.failed), (None, true));
        assert!(!c.holding("c"));

        // An answer after unanswered reads brings the room's tail, a personal room's only message.
        let mut c = reading();
        let _ = c.finish("c", None);
        let done = c.finish("c", Some(history("e", 1..=4)));
        assert_eq!(
            (delivered(&done), done.failed, done.again),
            (vec![4], false, None)
        );
    }

    #[test]
    fn a_room_too_busy_to_hold_for_is_given_up_and_its_late_read_dropped() {
        let mut c = reading();
        for offset in 0..HELD_MAX as u64 {
            assert!(c.hold("c", live(10 + offset, "e")).is_none());
        }
        let all = c
            .hold("c", live(10 + HELD_MAX as u64, "e"))
            .expect("given up");
        assert_eq!(all.len(), HELD_MAX + 1);
        assert_eq!(
            all.last().and_then(|h| h.frame.offset()),
            Some(10 + HELD_MAX as u64)
        );
        assert!(!c.holding("c"));
        let late = c.finish("c", Some(history("e", 4..=20)));
        assert!(delivered(&late).is_empty() && !late.failed);
    }

    #[test]
    fn lost_and_subscribed_again_while_reading_reads_once_more_from_the_new_position() {
        let mut c = reading();
        c.lost(&["c".to_owned()]);
        assert!(
            c.subscribed(&["c".to_owned()]).is_empty(),
            "one read at a time"
        );
        let done = c.finish("c", Some(history("e", 4..=5)));
        assert_eq!(delivered(&done), vec![4, 5]);
        let from = done.again.expect("read again");
        assert_eq!(from.offset, 5);
        assert!(c.holding("c"), "held again until the second read");
    }

    fn at(offset: u64) -> Position {
        Position {
            epoch: hashed("e"),
            offset,
        }
    }

    #[test]
    fn early_joins_before_the_subscription_read_from_the_earliest_once_it_is_made() {
        let mut c = CatchUp::default();
        assert!(c.joined_early("c", at(5), false).is_none());
        assert!(c.joined_early("c", at(7), false).is_none());
        assert_eq!(
            c.subscribed(&["c".to_owned()]),
            vec![("c".to_owned(), at(5))]
        );
        // A join seen after the subscription: what came live since (through 9) is not read again.
        let mut c = CatchUp::default();
        c.delivered("c", 9, "e");
        assert_eq!(
            c.joined_early("c", at(6), true),
            Some(("c".to_owned(), at(9)))
        );
        assert!(c.holding("c"));
        assert!(
            c.joined_early("c", at(12), true).is_none(),
            "a read is on its way"
        );
        let done = c.finish("c", Some(history("e", 8..=12)));
        assert_eq!(
            delivered(&done),
            vec![10, 11, 12],
            "from what was delivered"
        );
        // Nothing delivered here live yet: from the join's own offset.
        let mut c = CatchUp::default();
        assert_eq!(
            c.joined_early("c", at(4), true),
            Some(("c".to_owned(), at(4)))
        );
    }

    #[test]
    fn a_join_after_the_subscription_sets_where_to_start_only_when_nothing_came_live() {
        let mut c = CatchUp::default();
        c.joined("c", at(4));
        c.joined("c", at(6));
        c.lost(&["c".to_owned()]);
        assert_eq!(
            c.subscribed(&["c".to_owned()]),
            vec![("c".to_owned(), at(4))]
        );
        let mut c = CatchUp::default();
        c.delivered("c", 9, "e");
        c.joined("c", at(6));
        c.lost(&["c".to_owned()]);
        assert_eq!(
            c.subscribed(&["c".to_owned()])[0].1,
            at(9),
            "what came live stays"
        );
    }

    #[test]
    fn a_room_subscribed_with_nothing_stored_gets_everything_stored_since() {
        let mut c = CatchUp::default();
        let ch = ["c".to_owned(), "d".to_owned()];
        c.delivered("d", 2, "e");
        assert_eq!(c.without_position(&ch), vec!["c".to_owned()]);
        let nothing = Position {
            epoch: hashed(""),
            offset: 0,
        };
        c.floor("c", nothing);
        c.floor("d", at(1));
        c.lost(&ch);
        let reads = c.subscribed(&ch);
        assert_eq!(reads[1], ("d".to_owned(), at(2)), "a floor never lowers");
        // The room's first messages started an epoch of their own meanwhile.
        let done = c.finish("c", Some(history("new", 1..=2)));
        assert_eq!((delivered(&done), done.failed), (vec![1, 2], false));
    }

    #[test]
    fn a_channel_left_is_forgotten_whole() {
        let mut c = reading();
        c.forget("c");
        assert!(!c.holding("c"));
        c.lost(&["c".to_owned()]);
        assert!(
            c.subscribed(&["c".to_owned()]).is_empty(),
            "no position left"
        );
        assert!(delivered(&c.finish("c", None)).is_empty());
    }
}
