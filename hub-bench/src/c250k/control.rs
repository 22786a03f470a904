//! What the coordinator and its workers say to each other: one command per line on the worker's
//! stdin, one JSON answer per line on its stdout.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::track::RoomCount;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Answer a [`Status`].
    Status,
    /// Answer a [`WorkerReport`], counting against what was sent.
    Report(Sent),
    /// Exit (the connections close with the process).
    Quit,
}

/// What the coordinator published, for the final count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Personal messages `0..personal` were sent …
    pub personal: u64,
    /// … except these, which the API refused.
    pub personal_failed: Vec<u64>,
    /// Messages published to the room every connection is in, after every connection joined it.
    pub all: u64,
    /// Broadcasts sent after every connection was ready.
    pub broadcasts: u64,
}

/// A worker's connections at one moment; times are Unix µs (every process shares that clock).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub connections: u64,
    /// Connected and in both rooms now.
    pub ready: u64,
    /// Connections that were ready at least once.
    pub ever_ready: u64,
    pub first_ready_us: u64,
    pub last_ready_us: u64,
    /// Connection attempts that failed (refused, timed out, `503`, closed before ready).
    pub connect_failures: u64,
    /// Ready connections that ended.
    pub disconnects: u64,
    /// Connections ready again after a disconnect.
    pub reconnects: u64,
    /// Largest number of attempts one connection needed to be ready again.
    pub max_attempts: u64,
    /// Rejoins answered `recovered: false`.
    pub not_recovered: u64,
    /// `since` joins sent by live connections for a gap in a room's offsets.
    pub recoveries: u64,
    pub error_frames: u64,
    pub first_error: Option<String>,
    /// The first message a connection got twice outside a recovery: which room and offset,
    /// whether the hub marked it replayed, and the connection's history (to trace it).
    pub first_duplicate: Option<String>,
    /// The first connection short of a personal message at the end: its user and the missing
    /// message's number (when one is missing), to find it in the hubs' logs.
    #[serde(default)]
    pub first_lost: Option<String>,
    /// Broadcasts received (all connections) and when the latest arrived.
    pub broadcasts: u64,
    pub broadcast_last_us: u64,
    /// New messages of the common room received, and when the latest arrived.
    pub all_msgs: u64,
    pub all_last_us: u64,
    /// New personal messages received.
    pub personal_msgs: u64,
    /// This process's resident memory before it opened a connection, KiB.
    pub rss_start_kib: u64,
}

/// A worker's final count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub status: Status,
    pub all: RoomCount,
    pub personal: RoomCount,
    pub broadcast: RoomCount,
    /// Personal messages whose number says they were for another user.
    pub misrouted: u64,
    /// Personal messages the API refused (so not expected) that arrived all the same.
    pub refused_delivered: u64,
    /// Delivery latency of personal messages (due time → received), µs: `(value, count)` pairs of
    /// the histogram, so the coordinator can merge them exactly. Live deliveries apart from those
    /// replayed by a `since` join after a reconnect.
    pub latency_live_us: Vec<(u64, u64)>,
    pub latency_replayed_us: Vec<(u64, u64)>,
    /// Why connections ended, by reason (at most a few dozen reasons kept).
    pub ends: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_as_one_line() {
        for c in [
            Command::Status,
            Command::Quit,
            Command::Report(Sent {
                personal: 10,
                personal_failed: vec![3],
                all: 2,
                broadcasts: 1,
            }),
        ] {
            let line = serde_json::to_string(&c).expect("json");
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Command>(&line).expect("back"), c);
        }
    }
}
