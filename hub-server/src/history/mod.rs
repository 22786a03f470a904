//! Per-room history: what late joiners see and what a reconnecting client recovers.
//!
//! With Redis, each room message is appended and published in one atomic step (the bridge's
//! publisher sends the commands [`append`] builds, one [`scripts::APPEND`] each); a join reads
//! with [`scripts::READ`] ([`redis`]). Without Redis the same protocol
//! is served from memory ([`memory`]). `history_size = 0` turns it off: wave 1's pure pub/sub.
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
use crate::protocol::{Replay, Room};
use crate::redis_link::Redis;

pub use append::{AppendArgs, Appender, append_reply, unix_ms};
pub use epoch::new_epoch;
pub use keys::HistoryKeys;
pub use recovery::{Stored, outcome};

/// The history of every room, where the hub keeps it.
#[derive(Debug, Clone)]
pub enum History {
    Off,
    Memory(Arc<memory::MemoryHistory>),
    Redis(Arc<redis::RedisHistory>),
}

impl History {
    pub fn from_settings(settings: &Settings, redis: Option<&Redis>) -> Self {
        if settings.history_size == 0 {
            return History::Off;
        }
        match redis {
            Some(redis) => History::Redis(Arc::new(redis::RedisHistory::new(redis, settings))),
            None => History::Memory(Arc::new(memory::MemoryHistory::new(
                settings.history_size,
                settings.history_ttl,
            ))),
        }
    }

    pub fn is_on(&self) -> bool {
        !matches!(self, History::Off)
    }

    /// What `request` asks of `room`'s history (for the server API; joins use `crate::join`,
    /// which also orders the replay against live messages). `None`: no history, or Redis down.
    pub async fn read(&self, room: &Room, request: &Replay) -> Option<Stored> {
        match self {
            History::Off => None,
            History::Memory(memory) => Some(memory.with_room(room, |log| log.read(request))),
            History::Redis(redis) => redis.read(room, request).await,
        }
    }
}
