//! Stored room messages of this hub on their way round through Redis. With history on, a hub
//! delivers its own room messages when they come back from Redis (with their offset, in room
//! order). Local delivery must never wait on a slow Redis, though: a client's message that has not
//! come back within [`PATIENCE`] is delivered here without offset, and its copy from Redis, if it
//! ever comes, is dropped. A server API message waits longer — as long as its caller may wait —
//! because the caller may withdraw it meanwhile (then it must reach nobody; see
//! [`Handover`](crate::ack::Handover)). Every entry leaves within its patience plus one tick: the
//! queues stay small.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::ack::Handover;
use crate::hub::{ClientId, Hub};
use crate::protocol::{Frame, Room};
use crate::shutdown::Shutdown;

/// How long local members wait for a message to come back from Redis before they get it anyway.
pub const PATIENCE: Duration = Duration::from_millis(150);
const TICK: Duration = Duration::from_millis(25);
/// How many waiting entries `take` looks at.
const SCAN: usize = 64;

#[derive(Debug)]
pub struct Entry {
    pub id: String,
    pub room: Room,
    pub frame: Frame,
    pub sender: ClientId,
    due: Instant,
    /// Who may get it late: members seated by then.
    mark: u64,
    /// A server API message: its caller's side of the handover.
    withdrawable: Option<Arc<Handover>>,
    /// Members whose join's replay had it already (from the history, with its offset): the late
    /// copy would be their second.
    pub had_it: Vec<ClientId>,
}

impl Entry {
    /// `client`'s replay had this message.
    fn remember(&mut self, client: &ClientId) {
        if self.had_it.len() < HAD_IT_MAX {
            self.had_it.push(client.clone());
        }
    }

    /// Whether it may still be delivered late (not withdrawn by its API caller).
    fn deliverable(&self) -> bool {
        self.withdrawable.as_ref().is_none_or(|h| !h.withdrawn())
    }
}

/// Clients' messages in send order, which is the order Redis returns them in (one patience, so
/// the front is always the first due). Server API messages by id: one may go to a room this hub
/// does not listen to (a personal room whose user is elsewhere), so it never comes back here and
/// waits out its patience — a queue scanned from the front would soon not find the others.
#[derive(Debug, Default)]
struct Queues {
    clients: VecDeque<Entry>,
    api: HashMap<String, Entry>,
    /// The API entries' due times and ids, in push order (one patience: in due order too).
    api_due: VecDeque<(Instant, String)>,
    /// Messages delivered late, oldest first, with when.
    late: VecDeque<(Instant, String)>,
    late_ids: HashSet<String>,
}

/// Re-joined members an entry remembers (an entry leaves within its patience): past this, a
/// further one may get the late copy after its replay.
const HAD_IT_MAX: usize = 1024;
/// API messages held at most; past it one goes the clients' way (late after [`PATIENCE`]).
const API_HELD_MAX: usize = 65_536;
/// Ids of messages delivered late, kept so that a room caught up from the history after a lost
/// subscription does not deliver them again (see `bridge::catch_up`): at most this many, for at
/// most [`LATE_KEPT_FOR`].
const LATE_KEPT: usize = 65_536;
const LATE_KEPT_FOR: Duration = Duration::from_secs(600);

impl Queues {
    /// Keeps the ids of `entries`, delivered late now; forgets what is old or past the bound.
    fn went_late(&mut self, entries: &[Entry], now: Instant) {
        while let Some((at, _)) = self.late.front()
            && (*at + LATE_KEPT_FOR <= now || self.late.len() + entries.len() > LATE_KEPT)
        {
            if let Some((_, id)) = self.late.pop_front() {
                self.late_ids.remove(&id);
            }
        }
        for entry in entries.iter().take(LATE_KEPT) {
            self.late.push_back((now, entry.id.clone()));
            self.late_ids.insert(entry.id.clone());
        }
    }
}

#[derive(Debug, Default)]
pub struct Unconfirmed(Mutex<Queues>);

impl Unconfirmed {
    /// A client's message. `mark`: the hub's [`seat_mark`](crate::hub::Hub::seat_mark) when the
    /// message was sent.
    pub fn push(&self, id: String, room: Room, frame: Frame, sender: ClientId, mark: u64) {
        let entry = Entry {
            id,
            room,
            frame,
            sender,
            due: Instant::now() + PATIENCE,
            mark,
            withdrawable: None,
            had_it: Vec::new(),
        };
        self.lock().clients.push_back(entry);
    }

    /// A server API message, delivered late (if still not back, and not withdrawn) only after
    /// `patience`: how long its caller may wait.
    #[allow(clippy::too_many_arguments)]
    pub fn push_api(
        &self,
        id: String,
        room: Room,
        frame: Frame,
        sender: ClientId,
        mark: u64,
        handover: Arc<Handover>,
        patience: Duration,
    ) {
        let mut queues = self.lock();
        let held = queues.api.len() < API_HELD_MAX;
        let due = Instant::now() + if held { patience } else { PATIENCE };
        let entry = Entry {
            id,
            room,
            frame,
            sender,
            due,
            mark,
            withdrawable: Some(handover),
            had_it: Vec::new(),
        };
        if held {
            queues.api_due.push_back((due, entry.id.clone()));
            queues.api.insert(entry.id.clone(), entry);
        } else {
            queues.clients.push_back(entry);
        }
    }

    /// The entry of message `id`, if it is still waiting: the caller delivers it.
    pub fn take(&self, id: &str) -> Option<Entry> {
        let mut guard = self.lock();
        let queues = &mut *guard;
        // Almost always the first: messages come back in the order they were sent. Only the
        // first few are looked at: when Redis runs far behind, a full scan per message would
        // grow with the backlog exactly when the hub is short of CPU. An entry further back is
        // left to the overdue tick (delivered once, without offset).
        if let Some(at) = queues.clients.iter().take(SCAN).position(|e| e.id == id) {
            return queues.clients.remove(at);
        }
        queues.api.remove(id)
    }

    /// Entries past their patience, to deliver late; withdrawn ones leave without delivery.
    fn overdue(&self, now: Instant) -> Vec<Entry> {
        let mut guard = self.lock();
        let queues = &mut *guard;
        let mut due = Vec::new();
        while queues.clients.front().is_some_and(|e| e.due <= now) {
            due.extend(queues.clients.pop_front().filter(Entry::deliverable));
        }
        while queues.api_due.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, id)) = queues.api_due.pop_front() else {
                break;
            };
            // Gone already when it came back from Redis.
            due.extend(queues.api.remove(&id).filter(Entry::deliverable));
        }
        queues.went_late(&due, now);
        due
    }

    /// Whether any message waits to come back.
    pub fn waiting(&self) -> bool {
        let queues = self.lock();
        !queues.clients.is_empty() || !queues.api.is_empty()
    }

    /// `client`'s join replayed the messages `ids` from the history: those still waiting here
    /// will not go to it late. (The client queue is walked once: a replay's messages are stored,
    /// so theirs are among the oldest entries, but under a backlog not always the first few.)
    pub fn replayed(&self, client: &ClientId, ids: &[String]) {
        let mut guard = self.lock();
        let queues = &mut *guard;
        let mut rest: HashSet<&str> = HashSet::with_capacity(ids.len());
        for id in ids {
            match queues.api.get_mut(id) {
                Some(entry) => entry.remember(client),
                None => {
                    rest.insert(id);
                }
            }
        }
        if rest.is_empty() {
            return;
        }
        for entry in queues.clients.iter_mut() {
            if rest.remove(entry.id.as_str()) {
                entry.remember(client);
                if rest.is_empty() {
                    return;
                }
            }
        }
    }

    /// Whether message `id` was delivered late, without offset (in the last ten minutes).
    pub fn went_late(&self, id: &str) -> bool {
        self.lock().late_ids.contains(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Delivers overdue messages locally until shutdown.
pub(super) async fn run(unconfirmed: std::sync::Arc<Unconfirmed>, hub: Hub, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let due = unconfirmed.overdue(Instant::now());
        if !due.is_empty() {
            tracing::debug!(
                messages = due.len(),
                "redis is slow: delivering locally without offset"
            );
        }
        for entry in due {
            hub.deliver_late(
                &entry.room,
                &entry.frame,
                &entry.sender,
                entry.mark,
                &entry.had_it,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> Room {
        Room::parse("r").expect("room")
    }

    fn ids(entries: Vec<Entry>) -> Vec<String> {
        entries.into_iter().map(|e| e.id).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn entries_leave_when_taken_or_when_overdue_in_order() {
        let u = Unconfirmed::default();
        for id in ["a", "b", "c"] {
            u.push(id.into(), room(), Frame::pong(), "s".into(), 0);
        }
        assert_eq!(u.take("b").map(|e| e.id), Some("b".into()));
        assert!(u.take("b").is_none(), "taken once");
        assert!(u.overdue(Instant::now()).is_empty(), "not yet");
        tokio::time::advance(PATIENCE).await;
        let due = ids(u.overdue(Instant::now()));
        assert_eq!(due, vec!["a", "c"]);
        assert!(u.lock().clients.is_empty());
        // Remembered as gone out late (a history catch-up skips them), for ten minutes.
        assert!(u.went_late("a") && u.went_late("c") && !u.went_late("b"));
        tokio::time::advance(LATE_KEPT_FOR).await;
        u.push("d".into(), room(), Frame::pong(), "s".into(), 0);
        tokio::time::advance(PATIENCE).await;
        assert_eq!(ids(u.overdue(Instant::now())), vec!["d"]);
        assert!(!u.went_late("a") && u.went_late("d"));
    }

    #[test]
    fn take_looks_only_near_the_front_and_leaves_the_rest_to_the_tick() {
        let u = Unconfirmed::default();
        for i in 0..=SCAN {
            u.push(format!("m{i}"), room(), Frame::pong(), "s".into(), 0);
        }
        assert!(u.take(&format!("m{SCAN}")).is_none(), "past the scan");
        assert!(u.take(&format!("m{}", SCAN - 1)).is_some(), "within it");
        assert_eq!(
            u.lock().clients.len(),
            SCAN,
            "the far one still waits for the tick"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_message_waits_its_own_patience_and_a_withdrawn_one_is_never_delivered() {
        let u = Unconfirmed::default();
        let patience = Duration::from_secs(4);
        let (sent, withdrawn) = (Arc::new(Handover::default()), Arc::new(Handover::default()));
        u.push_api(
            "a".into(),
            room(),
            Frame::pong(),
            "api".into(),
            0,
            sent.clone(),
            patience,
        );
        u.push_api(
            "w".into(),
            room(),
            Frame::pong(),
            "api".into(),
            0,
            withdrawn.clone(),
            patience,
        );
        u.push("c".into(), room(), Frame::pong(), "s".into(), 0);
        assert!(sent.sending(), "went to Redis");
        assert!(withdrawn.withdraw(), "its caller gave up before it went");
        tokio::time::advance(PATIENCE).await;
        let due = ids(u.overdue(Instant::now()));
        assert_eq!(
            due,
            vec!["c"],
            "a client's message is not held up behind API ones"
        );
        tokio::time::advance(patience).await;
        let due = ids(u.overdue(Instant::now()));
        assert_eq!(due, vec!["a"], "the withdrawn one leaves undelivered");
        assert!(u.lock().api.is_empty() && u.lock().api_due.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_whose_replay_had_a_message_is_named_on_its_late_entry() {
        let u = Unconfirmed::default();
        u.push("c".into(), room(), Frame::pong(), "s".into(), 0);
        u.push_api(
            "a".into(),
            room(),
            Frame::pong(),
            "api".into(),
            0,
            Arc::new(Handover::default()),
            PATIENCE,
        );
        u.replayed(&"m".into(), &["a".into(), "c".into(), "gone".into()]);
        u.replayed(&"n".into(), &["c".into()]);
        tokio::time::advance(PATIENCE).await;
        let mut due = u.overdue(Instant::now());
        due.sort_by(|x, y| x.id.cmp(&y.id));
        let had_it: Vec<(String, Vec<ClientId>)> =
            due.into_iter().map(|e| (e.id, e.had_it)).collect();
        assert_eq!(
            had_it,
            vec![
                ("a".into(), vec!["m".into()]),
                ("c".into(), vec!["m".into(), "n".into()])
            ]
        );
    }

    #[test]
    fn an_api_message_coming_back_is_found_behind_client_ones() {
        let u = Unconfirmed::default();
        u.push("c".into(), room(), Frame::pong(), "s".into(), 0);
        let h = Arc::new(Handover::default());
        u.push_api(
            "a".into(),
            room(),
            Frame::pong(),
            "api".into(),
            0,
            h,
            PATIENCE,
        );
        assert_eq!(u.take("a").map(|e| e.sender), Some("api".into()));
        assert!(u.take("a").is_none());
    }
}
