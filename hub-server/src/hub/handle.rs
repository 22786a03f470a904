//! The hub's handle: one `Arc` over its state lock, its identity and its feeds; every concern's
//! methods live in a file of their own (see the module doc).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::Notify;
use uuid::Uuid;

use super::room_users::PresenceFeed;
use super::state::State;
use crate::protocol::Room;

#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub received: AtomicU64,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) name: String,
    pub(super) instance_id: Uuid,
    pub(super) max_rooms_per_client: usize,
    pub(super) state: RwLock<State>,
    /// Woken when the set of rooms with local members changes (the bridge resubscribes).
    pub(super) rooms_changed: Notify,
    /// Rooms that got their first local member or lost their last since the bridge last asked
    /// ([`Hub::take_room_changes`]): it subscribes per change, never by comparing every room.
    /// At most one entry per room.
    pub(super) room_changes: Mutex<HashSet<Room>>,
    /// Every change of who is in which room, for the presence writer.
    pub(super) presence: PresenceFeed,
    pub(super) counters: Counters,
    /// Seats ever taken: each new seat gets the next number (see [`Hub::seat_mark`]).
    pub(super) seats: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct Hub(pub(super) Arc<Inner>);

impl Hub {
    pub fn new(name: String, max_rooms_per_client: usize) -> Self {
        Hub(Arc::new(Inner {
            name,
            // A fresh id per process: two hubs configured with one name still tell each other apart.
            instance_id: Uuid::new_v4(),
            max_rooms_per_client,
            state: RwLock::default(),
            rooms_changed: Notify::new(),
            room_changes: Mutex::default(),
            presence: PresenceFeed::default(),
            counters: Counters::default(),
            seats: AtomicU64::new(0),
        }))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn instance_id(&self) -> Uuid {
        self.0.instance_id
    }

    pub fn counters(&self) -> &Counters {
        &self.0.counters
    }

    /// The number of the last seat taken: a message stamped with it reaches, late, only members
    /// seated by then — never one who joined after it was sent and got it from a replay.
    pub fn seat_mark(&self) -> u64 {
        self.0.seats.load(Ordering::Acquire)
    }

    /// The number of a seat taken now.
    pub(super) fn next_seat(&self) -> u64 {
        self.0.seats.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.0.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.0.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}
