//! What the bridge reports: its state, and a counter for every message published, received,
//! dropped or lost — never a silent loss (`/health`, `/metrics`).

use std::sync::atomic::AtomicU64;

use serde::Serialize;

use super::timings::BridgeTimings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BridgeState {
    Disabled,
    Up,
    Down,
}

/// Counters reported by `/health`; every message lost or dropped is counted here, never silent.
#[derive(Debug, Default, Serialize)]
pub struct BridgeCounters {
    pub published: AtomicU64,
    /// Local messages that found the outage buffer full and never reached Redis.
    pub overflowed: AtomicU64,
    /// Messages Redis refused (an error reply to their command): not published, not stored.
    pub failed: AtomicU64,
    pub received: AtomicU64,
    pub own_dropped: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    /// Messages of other hubs that Redis never delivered to this hub (sequence gaps).
    pub missed: AtomicU64,
    /// Messages from Redis this hub had no room for (its inbound queue was full): shed, not
    /// delivered; they show up as `missed` too, once the next message of their room arrives.
    pub inbound_shed: AtomicU64,
    /// Stored room messages this hub missed while its subscription was lost, delivered from the
    /// history once it was back (see `bridge::catch_up`).
    pub caught_up: AtomicU64,
    /// Rooms whose catching up failed (the history read failed, or the room was too busy to
    /// hold): their members see the gap in the offsets and recover it.
    pub catch_up_failed: AtomicU64,
    pub undecodable: AtomicU64,
    pub reconnects: AtomicU64,
    /// Publish round trips and cross-hub lag, for `/metrics` (not in `/health`).
    #[serde(skip)]
    pub timings: BridgeTimings,
}

/// Channels subscribed and messages waiting for the publisher, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct BridgeQueues {
    pub subscribed_channels: usize,
    pub buffered: usize,
}
