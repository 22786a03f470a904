//! History without Redis (a standalone hub): the same protocol from memory. A room's log is
//! locked while a message is appended *and delivered*, and while a join replays and enters the
//! room, so a joiner sees the replay, then every later message, with nothing in between lost or
//! repeated. Logs hold at most `history_size` messages and vanish after `history_ttl` of silence.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::epoch::new_epoch;
use super::recovery::Stored;
use crate::namespace::{Namespaces, Policy};
use crate::protocol::{Frame, Replay, Room};

#[derive(Debug)]
pub struct RoomLog {
    epoch: String,
    top: u64,
    entries: VecDeque<Frame>,
    /// The last append: the log expires `ttl` after it.
    touched: Instant,
    /// The room's namespace's `history_size` and `history_ttl`.
    size: usize,
    ttl: Duration,
}

impl RoomLog {
    fn new(policy: &Policy) -> Self {
        RoomLog {
            epoch: new_epoch(),
            top: 0,
            entries: VecDeque::new(),
            touched: Instant::now(),
            size: policy.history_size,
            ttl: policy.history_ttl,
        }
    }

    fn expired(&self) -> bool {
        self.touched.elapsed() > self.ttl
    }

    /// Stores `chat` as the next message; returns the stored frame (with offset and epoch).
    pub fn append(&mut self, chat: &Frame) -> Frame {
        self.top += 1;
        let stored = chat.stored(self.top, &self.epoch);
        if self.entries.len() == self.size {
            self.entries.pop_front();
        }
        self.entries.push_back(stored.clone());
        self.touched = Instant::now();
        stored
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn read(&self, request: &Replay) -> Stored {
        let entries = match request {
            Replay::None => Vec::new(),
            Replay::Last(n) => {
                let skip = self.entries.len().saturating_sub(*n);
                self.entries.iter().skip(skip).cloned().collect()
            }
            Replay::Since { offset, .. } => self
                .entries
                .iter()
                .filter(|f| f.offset().is_some_and(|o| o > *offset))
                .cloned()
                .collect(),
        };
        Stored {
            epoch: self.epoch.clone(),
            top: self.top,
            entries,
        }
    }
}

#[derive(Debug)]
pub struct MemoryHistory {
    rooms: Mutex<HashMap<Room, Arc<Mutex<RoomLog>>>>,
    /// What each room keeps, by its namespace.
    namespaces: Namespaces,
    /// A quarter of the shortest `history_ttl` of a namespace that keeps history: how often
    /// silent logs are swept.
    sweep_every: Duration,
    last_sweep: Mutex<Instant>,
}

impl MemoryHistory {
    pub fn new(namespaces: Namespaces) -> Self {
        let shortest = namespaces
            .all()
            .iter()
            .filter(|p| p.keeps_history())
            .map(|p| p.history_ttl)
            .min()
            .unwrap_or_default();
        MemoryHistory {
            rooms: Mutex::default(),
            namespaces,
            sweep_every: shortest / 4,
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Runs `f` on `room`'s log, locked. An expired log starts over with a new epoch.
    pub fn with_room<R>(&self, room: &Room, f: impl FnOnce(&mut RoomLog) -> R) -> R {
        self.sweep();
        let policy = self.namespaces.policy(room);
        let log = {
            let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
            rooms
                .entry(room.clone())
                .or_insert_with(|| Arc::new(Mutex::new(RoomLog::new(policy))))
                .clone()
        };
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.expired() {
            *log = RoomLog::new(policy);
        }
        f(&mut log)
    }

    /// Drops logs silent for longer than their TTL, at most every quarter of the shortest TTL.
    fn sweep(&self) {
        {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() < self.sweep_every {
                return;
            }
            *last = Instant::now();
        }
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        // A log someone holds (cloned under this lock, about to be locked) stays: dropping it
        // would let a second log, with another epoch, appear for the same room.
        rooms.retain(|_, log| {
            Arc::strong_count(log) > 1 || log.try_lock().map_or(true, |log| !log.expired())
        });
    }

    #[cfg(test)]
    fn rooms(&self) -> usize {
        self.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::{Globals, RawNamespaces};
    use crate::protocol::User;

    fn chat(n: u32) -> Frame {
        let user = User {
            id: "u",
            name: None,
        };
        Frame::chat(&format!("id{n}"), None, "c", user, &format!("m{n}"), "h")
    }

    fn room(name: &str) -> Room {
        Room::parse(name).expect("room")
    }

    /// Every room keeps `size` messages for `ttl`; rooms of `chat:` keep 5 for a minute.
    fn history(size: usize, ttl: Duration) -> MemoryHistory {
        let globals = Globals {
            history_size: size,
            history_ttl: ttl,
            recovery_max: 300,
        };
        let chat = serde_json::json!({"chat": {"history_size": 5, "history_ttl": "1m"}});
        let namespaces = Namespaces::new(globals, &RawNamespaces::from_value(chat));
        MemoryHistory::new(namespaces.expect("valid"))
    }

    #[test]
    fn offsets_count_up_and_the_log_keeps_the_newest() {
        let history = history(3, Duration::from_secs(60));
        let r = room("r");
        let stored: Vec<Frame> = (1..=5)
            .map(|n| history.with_room(&r, |log| log.append(&chat(n))))
            .collect();
        assert_eq!(
            stored.iter().map(|f| f.offset()).collect::<Vec<_>>(),
            (1..=5).map(Some).collect::<Vec<_>>()
        );
        let read = history.with_room(&r, |log| log.read(&Replay::Last(10)));
        assert_eq!(read.top, 5);
        assert_eq!(
            read.entries
                .iter()
                .filter_map(Frame::offset)
                .collect::<Vec<_>>(),
            vec![3, 4, 5],
            "history_size bounds the log"
        );
        let since = Replay::Since {
            epoch: read.epoch.clone(),
            offset: 4,
        };
        let read = history.with_room(&r, |log| log.read(&since));
        assert_eq!(read.entries.len(), 1);
    }

    #[test]
    fn a_silent_room_starts_over_with_a_new_epoch_and_is_swept() {
        let history = history(3, Duration::from_millis(40));
        let r = room("r");
        let first = history.with_room(&r, |log| {
            log.append(&chat(1));
            log.read(&Replay::None).epoch
        });
        std::thread::sleep(Duration::from_millis(60));
        let read = history.with_room(&room("other"), |log| log.read(&Replay::None));
        assert_eq!(read.top, 0);
        assert_eq!(history.rooms(), 1, "the silent room was swept");
        history.with_room(&room("chat:long"), |log| log.append(&chat(1)));
        std::thread::sleep(Duration::from_millis(60));
        history.with_room(&room("other"), |log| log.read(&Replay::None));
        assert_eq!(
            history.rooms(),
            2,
            "a chat: room keeps its log for its own namespace's minute"
        );
        let again = history.with_room(&r, |log| log.read(&Replay::Last(5)));
        assert_ne!(again.epoch, first);
        assert_eq!((again.top, again.entries.len()), (0, 0));
    }

    #[test]
    fn each_room_keeps_what_its_namespace_says() {
        let history = history(3, Duration::from_secs(60));
        for r in ["general", "chat:a"] {
            for n in 1..=8 {
                history.with_room(&room(r), |log| log.append(&chat(n)));
            }
        }
        let kept = |r: &str| history.with_room(&room(r), |log| log.read(&Replay::Last(100)));
        assert_eq!(kept("general").entries.len(), 3);
        assert_eq!(kept("chat:a").entries.len(), 5);
        assert_eq!(kept("chat:a").top, 8);
    }
}
