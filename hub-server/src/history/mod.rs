//! Per-room history: what late joiners see and what a reconnecting client recovers.
//!
//! With Redis, each room message is appended and published in one atomic step (the bridge's
//! publisher sends the commands [`append`] builds, one [`scripts::APPEND`] each); a join reads
//! with [`scripts::READ`] ([`redis`]). Without Redis the same protocol
//! is served from memory ([`memory`]). `history_size = 0` turns it off (wave 1's pure pub/sub),
//! for the whole hub or for one namespace's rooms: each room keeps what its namespace says.
//! [`recovery`] decides what a join replays: all of what was asked, or nothing.

pub mod append;
mod epoch;
mod keys;
pub mod memory;
pub mod recovery;
pub mod redis;
pub mod scripts;

use std::sync::Arc;

use crate::config::Settings;
use crate::namespace::Policy;
use crate::protocol::{Replay, Room};
use crate::redis_link::Redis;

pub use append::{AppendArgs, Appender, append_reply, unix_ms};
pub use epoch::new_epoch;
pub use keys::HistoryKeys;
pub use recovery::{Stored, outcome};

/// The history of every room, where the hub keeps it. Each room's namespace says how much it
/// keeps ([`History::of`]): a room whose namespace sets `history_size = 0` has none, beside rooms
/// that keep theirs in Redis or in memory.
#[derive(Debug, Clone)]
pub enum History {
    Off,
    Memory(Arc<memory::MemoryHistory>),
    Redis(Arc<redis::RedisHistory>),
}

impl History {
    /// Off when no namespace keeps any history (the default one included).
    pub fn from_settings(settings: &Settings, redis: Option<&Redis>) -> Self {
        let namespaces = &settings.namespaces;
        if !namespaces.all().iter().any(Policy::keeps_history) {
            return History::Off;
        }
        match redis {
            Some(redis) => History::Redis(Arc::new(redis::RedisHistory::new(redis, settings))),
            None => History::Memory(Arc::new(memory::MemoryHistory::new(namespaces.clone()))),
        }
    }

    /// Where the rooms of `policy`'s namespace keep their history: nowhere when it keeps none.
    pub fn of(&self, policy: &Policy) -> &History {
        match policy.keeps_history() {
            true => self,
            false => &History::Off,
        }
    }

    /// `room`'s epoch and last offset, read without creating anything (`("", 0)`: nothing
    /// stored yet); `None` without history kept in Redis, or when Redis does not answer.
    pub async fn top(&self, room: &Room, policy: &Policy) -> Option<(String, u64)> {
        match self.of(policy) {
            History::Redis(redis) => redis.top(room).await,
            _ => None,
        }
    }

    /// What `request` asks of `room`'s history (for the server API; joins use `crate::join`,
    /// which also orders the replay against live messages). `None`: no history, or Redis down.
    pub async fn read(&self, room: &Room, policy: &Policy, request: &Replay) -> Option<Stored> {
        match self.of(policy) {
            History::Off => None,
            History::Memory(memory) => Some(memory.with_room(room, |log| log.read(request))),
            History::Redis(redis) => redis.read(room, policy, request).await,
        }
    }
}
