//! The order of one room's messages, and the position (epoch, offset) a re-join recovers from.
//! Pure bookkeeping, no I/O: every message frame goes in (live or replayed, in whatever order the
//! network brought it) and comes out through `deliver` once, in offset order.
//!
//! The position is the highest offset up to which every message is accounted for: delivered,
//! dropped as a copy, the client's own (an ack said so), or declared lost by a recovery that
//! failed. A frame past the next offset waits here (bounded) until the hole before it is filled,
//! by a late ack or by a `since` re-join's replay; a frame of another epoch waits for the re-join
//! that explains it. Messages without offset (delivered while Redis was down) go out at once.
//!
//! `deliver` may refuse a message (the application's buffer is full): the stream then pauses at
//! the offset before it, forgets what it holds and drops what comes, until the room re-joins from
//! there ([`RoomStream::resume`]).

use std::collections::BTreeMap;

use crate::message::{Message, Position};

/// What the room has to do after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Nothing,
    /// A hole opened, or remains, before held frames.
    Gap,
    /// A frame of another epoch came: the room's history was reset; re-join to learn how.
    Epoch,
    /// Too many frames wait behind a hole: give up on it.
    Overflow,
}

impl Outcome {
    fn or(self, other: Outcome) -> Outcome {
        if other == Outcome::Nothing {
            self
        } else {
            other
        }
    }
}

/// A held offset: a frame, or the client's own message (acked; never delivered to it).
#[derive(Debug)]
enum Slot {
    Frame(Box<Message>),
    Own,
}

#[derive(Debug)]
pub(crate) struct RoomStream {
    max_held: usize,
    epoch: Option<String>,
    /// Meaningful with `epoch`; -1 before the first message of an epoch read from a frame at 0.
    offset: i64,
    /// Frames of `epoch` past `offset + 1`; before the first position, anything with an offset.
    held: BTreeMap<i64, Slot>,
    /// Frames of an epoch other than `epoch`, waiting for the re-join that says what happened.
    foreign: Vec<Message>,
    /// The first join was answered (with or without a position).
    started: bool,
    /// `deliver` refused a message: drop everything until [`RoomStream::resume`].
    paused: bool,
}

fn offset_of(m: &Message) -> Option<i64> {
    match (&m.epoch, m.offset) {
        (Some(e), Some(o)) if !e.is_empty() => i64::try_from(o).ok(),
        _ => None,
    }
}

impl RoomStream {
    pub(crate) fn new(max_held: usize) -> Self {
        RoomStream {
            max_held,
            epoch: None,
            offset: 0,
            held: BTreeMap::new(),
            foreign: Vec::new(),
            started: false,
            paused: false,
        }
    }

    /// Starts from a position the application kept.
    pub(crate) fn set_position(&mut self, p: &Position) {
        self.epoch = Some(p.epoch.clone());
        self.offset = p.offset as i64;
        self.started = true;
    }

    pub(crate) fn position(&self) -> Option<Position> {
        self.epoch.as_ref().map(|epoch| Position {
            epoch: epoch.clone(),
            offset: self.offset.max(0) as u64,
        })
    }

    pub(crate) fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// Whether messages are held behind a hole.
    pub(crate) fn has_gap(&self) -> bool {
        !self.held.is_empty() && self.epoch.is_some()
    }

    pub(crate) fn paused(&self) -> bool {
        self.paused
    }

    /// The room re-joins from the position: frames are taken again.
    pub(crate) fn resume(&mut self) {
        self.paused = false;
    }

    fn full(&self) -> bool {
        self.held.len() + self.foreign.len() > self.max_held
    }

    /// `deliver` refused the message at `offset` (of the current epoch, or none): pause before it.
    fn pause(&mut self, refused_at: Option<i64>) {
        if let Some(at) = refused_at {
            self.offset = at - 1;
        }
        self.held.clear();
        self.foreign.clear();
        self.paused = true;
    }

    /// One message frame.
    pub(crate) fn receive(
        &mut self,
        m: Message,
        deliver: &mut dyn FnMut(Message) -> bool,
    ) -> Outcome {
        if self.paused {
            return Outcome::Nothing;
        }
        let Some(off) = offset_of(&m) else {
            if !deliver(m) {
                self.pause(None);
            }
            return Outcome::Nothing;
        };
        if self.epoch.is_none() {
            if !self.started {
                // The first join is not answered yet: its `joined` says where the room starts.
                self.held.insert(off, Slot::Frame(Box::new(m)));
                return if self.full() {
                    Outcome::Overflow
                } else {
                    Outcome::Nothing
                };
            }
            // Joined without a position (Redis was down then): the first stored message gives one.
            self.epoch = m.epoch.clone();
            self.offset = off - 1;
        }
        if m.epoch != self.epoch {
            self.foreign.push(m);
            return if self.full() {
                Outcome::Overflow
            } else {
                Outcome::Epoch
            };
        }
        if off <= self.offset {
            return Outcome::Nothing; // accounted for: a copy
        }
        if off == self.offset + 1 {
            self.offset = off;
            if !deliver(m) {
                self.pause(Some(off));
                return Outcome::Nothing;
            }
            self.drain(deliver);
            return if self.has_gap() {
                Outcome::Gap
            } else {
                Outcome::Nothing
            };
        }
        // A frame wins over a placeholder: which messages are ours is decided when they go out.
        self.held.insert(off, Slot::Frame(Box::new(m)));
        if self.full() {
            Outcome::Overflow
        } else {
            Outcome::Gap
        }
    }

    /// The client's own message was stored at `offset` (its ack, whose epoch is the room's
    /// current one). The hub never sends it back live, so without this every own message would
    /// look like a hole.
    pub(crate) fn own_stored(&mut self, offset: u64, deliver: &mut dyn FnMut(Message) -> bool) {
        let Ok(off) = i64::try_from(offset) else {
            return;
        };
        if self.epoch.is_none() || off <= self.offset {
            return;
        }
        if off == self.offset + 1 {
            self.offset = off;
            self.drain(deliver);
        } else if !self.paused {
            self.held.entry(off).or_insert(Slot::Own);
        }
    }

    /// The first join's answer: the room starts at (epoch, offset). Of what arrived meanwhile,
    /// what the join replayed is delivered in order; live frames at or before `offset` were said
    /// before the subscription (a room the connection was already in); later ones continue from
    /// there. A hub without history answers no epoch: the room then has no position.
    pub(crate) fn start(
        &mut self,
        epoch: Option<&str>,
        offset: Option<u64>,
        deliver: &mut dyn FnMut(Message) -> bool,
    ) -> Outcome {
        let frames: Vec<Message> = std::mem::take(&mut self.held)
            .into_values()
            .filter_map(|s| match s {
                Slot::Frame(m) => Some(*m),
                Slot::Own => None,
            })
            .collect();
        self.foreign.clear();
        self.started = true;
        let (Some(epoch), Some(offset)) = (epoch, offset.and_then(|o| i64::try_from(o).ok()))
        else {
            for m in frames {
                if self.paused {
                    break;
                }
                if !deliver(m) {
                    self.pause(None);
                }
            }
            return Outcome::Nothing;
        };
        self.epoch = Some(epoch.to_owned());
        self.offset = offset;
        let mut result = Outcome::Nothing;
        for m in frames {
            if self.paused {
                break;
            }
            if m.epoch.as_deref() != Some(epoch) {
                continue;
            }
            let off = offset_of(&m).unwrap_or(0);
            if off <= offset {
                if m.replayed && !deliver(m) {
                    self.pause(Some(off));
                }
            } else {
                result = result.or(self.receive(m, deliver));
            }
        }
        result
    }

    /// A `since` re-join recovered (its replay came through `receive`). True when a hole still
    /// lies at or before `offset` (the replay did not cover what it said it did).
    pub(crate) fn recovered_short(&self, epoch: Option<&str>, offset: Option<u64>) -> bool {
        match (epoch, offset) {
            (Some(e), Some(o)) if Some(e) == self.epoch.as_deref() => self.offset < o as i64,
            _ => false,
        }
    }

    /// Recovery failed: what lies between the position and (epoch, offset) is lost. Frames in
    /// hand are delivered first, in offset order (nothing else of an epoch that ended can come),
    /// then the room continues from (epoch, offset), or from `offset` of the new epoch, whose
    /// frames in hand follow.
    pub(crate) fn jump(
        &mut self,
        epoch: &str,
        offset: Option<u64>,
        deliver: &mut dyn FnMut(Message) -> bool,
    ) -> Outcome {
        let same_epoch = self.epoch.as_deref() == Some(epoch);
        let target = offset
            .and_then(|o| i64::try_from(o).ok())
            .unwrap_or(self.offset);
        let mine = std::mem::take(&mut self.held);
        for (at, slot) in mine {
            if self.paused {
                break;
            }
            if same_epoch && at > target {
                self.held.insert(at, slot); // past the jump: ordinary held frames
                continue;
            }
            self.offset = at;
            if let Slot::Frame(m) = slot
                && !deliver(*m)
            {
                self.pause(Some(at));
            }
        }
        if self.paused {
            return Outcome::Nothing;
        }
        if same_epoch {
            self.offset = self.offset.max(target);
            self.drain(deliver);
            return if self.has_gap() {
                Outcome::Gap
            } else {
                Outcome::Nothing
            };
        }
        let mut next: Vec<Message> = std::mem::take(&mut self.foreign)
            .into_iter()
            .filter(|m| m.epoch.as_deref() == Some(epoch))
            .collect();
        next.sort_by_key(|m| m.offset);
        self.epoch = Some(epoch.to_owned());
        self.offset = target;
        let mut result = Outcome::Nothing;
        for m in next {
            result = result.or(self.receive(m, deliver));
        }
        result
    }

    /// Gives up on every hole (too much waits behind it): what is held goes out in offset order,
    /// then frames of a newer epoch. Returns how many offsets were skipped.
    pub(crate) fn skip_holes(&mut self, deliver: &mut dyn FnMut(Message) -> bool) -> u64 {
        if self.epoch.is_none() {
            // Before the first position: no order to keep beyond the offsets themselves.
            for (_, slot) in std::mem::take(&mut self.held) {
                if let Slot::Frame(m) = slot
                    && !self.paused
                    && !deliver(*m)
                {
                    self.pause(None);
                }
            }
            return 0;
        }
        let before = self.offset;
        let frames = self
            .held
            .values()
            .filter(|s| matches!(s, Slot::Frame(_)))
            .count() as i64;
        let last = self.held.keys().next_back().copied().unwrap_or(self.offset);
        let skipped = if frames > 0 {
            (last - before - frames).max(0) as u64
        } else {
            0
        };
        let current = self.epoch.clone().unwrap_or_default();
        let newest = self.foreign.last().and_then(|m| m.epoch.clone());
        self.jump(&current, u64::try_from(last).ok(), deliver);
        if let Some(newest) = newest {
            let first = self
                .foreign
                .iter()
                .filter(|m| m.epoch.as_deref() == Some(newest.as_str()))
                .filter_map(|m| m.offset)
                .min()
                .unwrap_or(1);
            self.jump(&newest, Some(first.saturating_sub(1)), deliver);
        }
        skipped
    }

    fn drain(&mut self, deliver: &mut dyn FnMut(Message) -> bool) {
        while !self.paused {
            let Some(slot) = self.held.remove(&(self.offset + 1)) else {
                return;
            };
            self.offset += 1;
            if let Slot::Frame(m) = slot
                && !deliver(*m)
            {
                let at = self.offset;
                self.pause(Some(at));
            }
        }
    }
}

#[cfg(test)]
#[path = "room_stream_tests.rs"]
mod tests;
