//! The client's publishes, from [`Room::publish`](crate::Room::publish) to their answer, and the
//! rule that the SDK never stores one twice.
//!
//! A publish is queued (bounded), sent once its room is joined on the current connection (in call
//! order per room, paced, a bounded number awaiting acks), and settled by its ack, by an error
//! with its `ref`, or by its timeout. When the connection carrying it drops before the ack, it is
//! in doubt: the hub may have stored it (and the ack was lost) or not. The hub chooses message
//! ids, so the SDK recognises it in the room's history by what it does know: sent by that
//! connection's client id, to that room, with that content, the earliest such publish sent (one
//! connection's messages are stored in the order they were sent). Found: it resolves with that id
//! and offset and is never sent again. Not found in a complete history read made at least
//! `resend_after` after it was sent: it was not stored, and is sent again. The history reset or
//! trimmed meanwhile: nobody can tell, and it fails with `unknown` rather than risk a second copy.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{ErrorCode, HubError};
use crate::frame::{Inbound, outbound};
use crate::message::{Ack, Message};
use crate::wire::Wire;

/// Timed-out publishes remembered so a late stored copy is matched to them, not to a newer one.
const GHOSTS: usize = 256;

pub(crate) type Reply = oneshot::Sender<Result<Ack, HubError>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Queued,
    Sent,
    /// Sent on a connection that dropped before the answer.
    Doubt,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    room: String,
    content: String,
    stage: Stage,
    reference: String,
    /// The connection it was last sent on.
    generation: u64,
    client_id: String,
    sent_at: Instant,
    /// Send order (a resend comes later than everything sent before it).
    send_seq: u64,
    sends: u32,
    /// The room's history changed epoch while it was in doubt.
    unknowable: bool,
    reply: Option<Reply>,
}

/// What a timed-out publish was, to recognise a stored copy of it later.
#[derive(Debug)]
struct Ghost {
    room: String,
    content: String,
    client_id: String,
    send_seq: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboxOptions {
    pub publish_timeout: Duration,
    pub resend_after: Duration,
    pub window: usize,
    pub max_message_bytes: usize,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    opts: OutboxOptions,
    /// Unsettled publishes, in call order.
    entries: VecDeque<Entry>,
    by_ref: HashMap<String, u64>,
    ghosts: VecDeque<Ghost>,
    send_seq: u64,
    paused_until: Option<Instant>,
    /// Publishes not settled yet, shared with the handles that check `max_queued` at call time.
    queued: Arc<AtomicUsize>,
}

/// A publish was stored: tell its room the offset (so its own message is not a hole).
pub(crate) struct Stored {
    pub room: String,
    pub offset: u64,
}

impl Outbox {
    pub(crate) fn new(opts: OutboxOptions, queued: Arc<AtomicUsize>) -> Self {
        Outbox {
            opts,
            entries: VecDeque::new(),
            by_ref: HashMap::new(),
            ghosts: VecDeque::new(),
            send_seq: 0,
            paused_until: None,
            queued,
        }
    }

    /// Takes a publish numbered `seq` (its place in call order, given by the handle). Returns the
    /// time its timeout falls due, or fails it at once.
    pub(crate) fn publish(
        &mut self,
        seq: u64,
        room: &str,
        content: String,
        reply: Reply,
        now: Instant,
    ) -> Option<Instant> {
        let refuse = |reply: Reply, err: HubError| {
            let _ = reply.send(Err(err.stored(false)));
        };
        if content.is_empty() {
            self.release(1);
            refuse(
                reply,
                HubError::bad_argument("content must be a non-empty string"),
            );
            return None;
        }
        let bytes = outbound::publish_size(room, &content);
        if bytes > self.opts.max_message_bytes {
            self.release(1);
            let msg = format!(
                "the message frame is {bytes} bytes, over max_message_bytes ({})",
                self.opts.max_message_bytes
            );
            refuse(reply, HubError::new(ErrorCode::TooLarge, msg));
            return None;
        }
        self.entries.push_back(Entry {
            seq,
            room: room.to_owned(),
            content,
            stage: Stage::Queued,
            reference: String::new(),
            generation: 0,
            client_id: String::new(),
            sent_at: now,
            send_seq: 0,
            sends: 0,
            unknowable: false,
            reply: Some(reply),
        });
        Some(now + self.opts.publish_timeout)
    }

    /// Sends what may go now. Returns when to try again, if something waits for the pace or a
    /// pause. `joined(room)`: the room is joined on this connection.
    pub(crate) fn pump(
        &mut self,
        wire: &mut dyn Wire,
        joined: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Option<Instant> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Some(until);
            }
            self.paused_until = None;
        }
        let generation = wire.generation();
        let mut awaiting = self
            .entries
            .iter()
            .filter(|e| e.stage == Stage::Sent && e.generation == generation)
            .count();
        // Rooms whose next publish cannot go: later ones of the room keep their order.
        let mut blocked: Vec<&str> = Vec::new();
        for e in self.entries.iter_mut() {
            if e.stage == Stage::Doubt {
                blocked.push(&e.room);
            }
            if e.stage != Stage::Queued || blocked.contains(&e.room.as_str()) {
                continue;
            }
            if !joined(&e.room) {
                blocked.push(&e.room);
                continue;
            }
            if awaiting >= self.opts.window {
                return None; // an ack will pump again
            }
            if !wire.pace(now) {
                return Some(now + wire.pace_wait(now));
            }
            e.sends += 1;
            let reference = format!("p{}.{}", e.seq, e.sends);
            if !wire.send(outbound::publish(&e.room, &e.content, &reference)) {
                return None;
            }
            self.by_ref.insert(reference.clone(), e.seq);
            e.reference = reference;
            e.stage = Stage::Sent;
            e.generation = generation;
            e.client_id = wire.client_id().to_owned();
            e.sent_at = now;
            self.send_seq += 1;
            e.send_seq = self.send_seq;
            awaiting += 1;
        }
        None
    }

    fn position(&self, seq: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.seq == seq)
    }

    /// Removes a publish (it is answered, one way or the other) and returns it.
    fn settle(&mut self, index: usize) -> Entry {
        let e = self.entries.remove(index).expect("index in range");
        if self.by_ref.get(&e.reference) == Some(&e.seq) {
            self.by_ref.remove(&e.reference);
        }
        self.release(1);
        e
    }

    fn release(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }

    /// A publish the handle counted never reached the outbox (refused before it).
    pub(crate) fn release_one(&self) {
        self.release(1);
    }

    fn answer(mut e: Entry, result: Result<Ack, HubError>) {
        if let Some(reply) = e.reply.take() {
            let _ = reply.send(result);
        }
    }

    /// Publishes awaiting an ack on connection `generation` in `room` (a hole there may be one of them).
    pub(crate) fn awaiting_ack(&self, room: &str, generation: u64) -> bool {
        self.entries
            .iter()
            .any(|e| e.room == room && e.stage == Stage::Sent && e.generation == generation)
    }

    /// Publishes of `room` whose storage is in doubt.
    pub(crate) fn in_doubt(&self, room: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.room == room && e.stage == Stage::Doubt)
    }

    /// An `ack` frame of connection `generation`.
    pub(crate) fn on_ack(&mut self, frame: &Inbound, generation: u64) -> Option<Stored> {
        let index = self.sent_by_ref(frame, generation)?;
        let e = self.settle(index);
        let stored = frame.offset.map(|offset| Stored {
            room: e.room.clone(),
            offset,
        });
        let ack = Ack {
            id: frame.id.clone().unwrap_or_default(),
            offset: frame.offset,
        };
        Self::answer(e, Ok(ack));
        stored
    }

    /// An `error` frame with a `ref` on connection `generation`.
    pub(crate) fn on_error(&mut self, frame: &Inbound, generation: u64) {
        let Some(index) = self.sent_by_ref(frame, generation) else {
            return;
        };
        let e = self.settle(index);
        // `unavailable`: the hub could not queue it for storing; its own local members got it
        // anyway (README): not stored, and not to be sent again under a new id.
        let err = HubError::new(
            ErrorCode::from_hub(frame.code.as_deref()),
            frame
                .message
                .clone()
                .unwrap_or_else(|| "refused by the hub".to_owned()),
        )
        .stored(false);
        Self::answer(e, Err(err));
    }

    fn sent_by_ref(&self, frame: &Inbound, generation: u64) -> Option<usize> {
        let seq = *self.by_ref.get(frame.reference.as_deref()?)?;
        let index = self.position(seq)?;
        let e = &self.entries[index];
        (e.stage == Stage::Sent && e.generation == generation).then_some(index)
    }

    /// The connection carrying the sent publishes is gone: each is now in doubt.
    pub(crate) fn connection_lost(&mut self) {
        for e in self.entries.iter_mut().filter(|e| e.stage == Stage::Sent) {
            e.stage = Stage::Doubt;
        }
    }

    /// The hub refused frames for its rate limit (its error names none): any publish awaiting its
    /// ack on connection `generation` may have been dropped, so it is in doubt; sending pauses a second.
    pub(crate) fn rate_limited(&mut self, generation: u64, now: Instant) {
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.stage == Stage::Sent && e.generation == generation)
        {
            e.stage = Stage::Doubt;
        }
        self.paused_until = Some(now + Duration::from_secs(1));
    }

    /// One of the client's own messages (`from` is one of its connections) went out of `room`'s
    /// stream in offset order: the publish it was is settled with its id and offset.
    pub(crate) fn match_stored(&mut self, room: &str, m: &Message) {
        let fits = |r: &str, content: &str, client_id: &str| {
            r == room && content == m.content && client_id == m.from
        };
        let best = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.stage != Stage::Queued && fits(&e.room, &e.content, &e.client_id))
            .min_by_key(|(_, e)| e.send_seq)
            .map(|(i, e)| (i, e.send_seq));
        let ghost = self
            .ghosts
            .iter()
            .enumerate()
            .filter(|(_, g)| fits(&g.room, &g.content, &g.client_id))
            .min_by_key(|(_, g)| g.send_seq)
            .map(|(i, g)| (i, g.send_seq));
        match (best, ghost) {
            (_, Some((g, gs))) if best.is_none_or(|(_, bs)| gs < bs) => {
                // Its caller already heard `timeout`; it was stored after all.
                self.ghosts.remove(g);
            }
            (Some((i, _)), _) => {
                let e = self.settle(i);
                let ack = Ack {
                    id: m.id.clone(),
                    offset: m.offset,
                };
                Self::answer(e, Ok(ack));
            }
            _ => {}
        }
    }

    /// A `since` re-join of `room` was answered and its replay matched what it could.
    /// `complete`: the hub replayed everything after the room's position, from a read started no
    /// earlier than `read_at`; `lost`: the history was reset or trimmed, so what it lacks may have
    /// been stored all the same. Returns when a later read would settle what is still in doubt.
    pub(crate) fn after_read(
        &mut self,
        room: &str,
        complete: bool,
        read_at: Instant,
        lost: bool,
    ) -> Option<Instant> {
        let mut probe_at: Option<Instant> = None;
        let mut i = 0;
        while i < self.entries.len() {
            let e = &mut self.entries[i];
            if e.room != room || e.stage != Stage::Doubt {
                i += 1;
                continue;
            }
            if lost || e.unknowable {
                let e = self.settle(i);
                let err = HubError::new(
                    ErrorCode::Unknown,
                    "the connection dropped before the ack and the room history no longer says \
                     whether it was stored",
                )
                .stored(true);
                Self::answer(e, Err(err));
                continue;
            }
            if complete {
                let due = e.sent_at + self.opts.resend_after;
                if read_at >= due {
                    self.by_ref.remove(&e.reference);
                    e.stage = Stage::Queued; // not stored: sent again, first of its room
                } else {
                    probe_at = Some(probe_at.map_or(due, |p| p.max(due)));
                }
            }
            i += 1;
        }
        probe_at
    }

    /// The room's history changed epoch: a publish in doubt may have been stored in the old one
    /// after the room's position. The new epoch's replay may still show it; if not, nobody can tell.
    pub(crate) fn mark_unknowable(&mut self, room: &str) {
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.room == room && e.stage == Stage::Doubt)
        {
            e.unknowable = true;
        }
    }

    /// Fails every publish of `room` (unsubscribed, refused), or of the client (`None`: closed).
    pub(crate) fn fail_all(&mut self, room: Option<&str>, err: &HubError) {
        let mut i = 0;
        while i < self.entries.len() {
            if room.is_some_and(|r| r != self.entries[i].room) {
                i += 1;
                continue;
            }
            let maybe_stored = self.entries[i].stage != Stage::Queued;
            let e = self.settle(i);
            Self::answer(e, Err(err.clone().stored(maybe_stored)));
        }
        match room {
            None => self.ghosts.clear(),
            Some(r) => self.ghosts.retain(|g| g.room != r),
        }
    }

    /// Publish `seq` was not answered within `publish_timeout`.
    pub(crate) fn expire(&mut self, seq: u64) {
        let Some(index) = self.position(seq) else {
            return;
        };
        let e = self.settle(index);
        let maybe_stored = e.stage != Stage::Queued;
        if maybe_stored {
            self.ghosts.push_back(Ghost {
                room: e.room.clone(),
                content: e.content.clone(),
                client_id: e.client_id.clone(),
                send_seq: e.send_seq,
            });
            if self.ghosts.len() > GHOSTS {
                self.ghosts.pop_front();
            }
        }
        let err = HubError::new(
            ErrorCode::Timeout,
            format!(
                "no ack within publish_timeout ({} ms)",
                self.opts.publish_timeout.as_millis()
            ),
        )
        .stored(maybe_stored);
        Self::answer(e, Err(err));
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
