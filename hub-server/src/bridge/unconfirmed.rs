//! Stored room messages of this hub on their way round through Redis. With history on, a hub
//! delivers its own room messages when they come back from Redis (with their offset, in room
//! order). Local delivery must never wait on a slow Redis, though: a message that has not come
//! back within [`PATIENCE`] is delivered here without offset, and its copy from Redis, if it ever
//! comes, is dropped. Every entry leaves within `PATIENCE` plus one tick: the map stays small.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

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
    sent: Instant,
    /// Who may get it late: members seated by then.
    mark: u64,
}

/// In send order, which is the order Redis returns them in.
#[derive(Debug, Default)]
pub struct Unconfirmed(Mutex<VecDeque<Entry>>);

impl Unconfirmed {
    /// `mark`: the hub's [`seat_mark`](crate::hub::Hub::seat_mark) when the message was sent.
    pub fn push(&self, id: String, room: Room, frame: Frame, sender: ClientId, mark: u64) {
        let entry = Entry {
            id,
            room,
            frame,
            sender,
            sent: Instant::now(),
            mark,
        };
        self.lock().push_back(entry);
    }

    /// The entry of message `id`, if it is still waiting: the caller delivers it.
    pub fn take(&self, id: &str) -> Option<Entry> {
        let mut entries = self.lock();
        // Almost always the first: messages come back in the order they were sent. Only the
        // first few are looked at: when Redis runs far behind, a full scan per message would
        // grow with the backlog exactly when the hub is short of CPU. An entry further back is
        // left to the overdue tick (delivered once, without offset).
        let at = entries.iter().take(SCAN).position(|e| e.id == id)?;
        entries.remove(at)
    }

    fn overdue(&self, now: Instant) -> Vec<Entry> {
        let mut entries = self.lock();
        let mut due = Vec::new();
        while entries.front().is_some_and(|e| now - e.sent >= PATIENCE) {
            due.extend(entries.pop_front());
        }
        due
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
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
            hub.deliver_late(&entry.room, &entry.frame, &entry.sender, entry.mark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> Room {
        Room::parse("r").expect("room")
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
        let due: Vec<String> = u
            .overdue(Instant::now())
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(due, vec!["a", "c"]);
        assert!(u.lock().is_empty());
    }

    #[test]
    fn take_looks_only_near_the_front_and_leaves_the_rest_to_the_tick() {
        let u = Unconfirmed::default();
        for i in 0..=SCAN {
            u.push(format!("m{i}"), room(), Frame::pong(), "s".into(), 0);
        }
        assert!(u.take(&format!("m{SCAN}")).is_none(), "past the scan");
        assert!(u.take(&format!("m{}", SCAN - 1)).is_some(), "within it");
        assert_eq!(u.lock().len(), SCAN, "the far one still waits for the tick");
    }
}
