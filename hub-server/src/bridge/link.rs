//! What the bridge's tasks share: the state they report and read ([`Shared`]), and how each
//! reaches Redis ([`Link`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::channels::Channels;
use super::counters::BridgeCounters;
use super::outgoing::Outgoing;
use super::unconfirmed::Unconfirmed;
use crate::redis_link::Redis;
use crate::shutdown::Shutdown;

/// The bridge's state, shared by its handle and its tasks.
#[derive(Debug)]
pub struct Shared {
    pub outgoing: mpsc::Sender<Outgoing>,
    /// Messages handed to the publisher and not yet answered by Redis (queued, held while their
    /// master is down, or on their way), at most `buffer_limit` (`bridge_buffer`).
    pub buffered: AtomicUsize,
    pub buffer_limit: usize,
    pub channels: Channels,
    pub publisher_up: watch::Sender<bool>,
    pub subscriber_up: watch::Sender<bool>,
    /// The subscriber has a connection: up, or still subscribing on a fresh one (joins then wait
    /// for their channel instead of being told `joined` before it is subscribed).
    pub subscriber_connected: watch::Sender<bool>,
    /// Channels the subscriber connection is confirmed to be subscribed to.
    pub subscribed: watch::Sender<HashSet<String>>,
    pub counters: BridgeCounters,
    /// This hub's stored room messages until they come back from Redis (or are overdue).
    pub unconfirmed: Arc<Unconfirmed>,
    /// What joins' history reads covered, to the subscriber (see [`JoinRead`]).
    pub join_reads: mpsc::Sender<JoinRead>,
    pub redis: Redis,
    pub tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// A join's history read covered its room through `offset` of `epoch` (see
/// [`Bridge::join_read`](super::Bridge::join_read)); `subscribed`: the room's channel was
/// confirmed before it.
#[derive(Debug)]
pub struct JoinRead {
    pub channel: String,
    /// [`hashed`](super::catch_up::hashed).
    pub epoch: u64,
    pub offset: u64,
    pub subscribed: bool,
}

/// What every bridge task needs to reach Redis.
#[derive(Debug, Clone)]
pub struct Link {
    pub redis: Redis,
    /// This process's origin id, stamped on every envelope it publishes.
    pub instance_id: uuid::Uuid,
    pub bridge: Arc<Shared>,
    pub shutdown: Shutdown,
}

impl Link {
    /// Sets a connection's up flag and logs the change.
    pub fn set_up(flag: &watch::Sender<bool>, up: bool, who: &'static str) {
        let was = flag.send_replace(up);
        match (was, up) {
            (false, true) => tracing::info!(task = who, "redis connection up"),
            (true, false) => tracing::warn!(task = who, "redis connection lost"),
            _ => {}
        }
    }
}
