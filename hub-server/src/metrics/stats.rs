//! What the hub counts for its metrics alone (the hub's and the bridge's own counters are read
//! where they are kept, see `collector`). Every counter is a relaxed atomic in a fixed array
//! indexed by a label of `labels`: counting is one add, never a lookup.

use std::sync::atomic::{AtomicU64, Ordering};

use super::labels::{
    self, AUTH_FAILURES, CLOSE_REASONS, ERROR_CODES, RECOVERY_RESULTS, TRANSPORTS,
};
use crate::error::CloseReason;
use crate::protocol::JoinOutcome;

#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub closed: [AtomicU64; CLOSE_REASONS.len()],
    pub auth_failures: [AtomicU64; AUTH_FAILURES.len()],
    pub errors: [AtomicU64; ERROR_CODES.len()],
    pub recoveries: [AtomicU64; RECOVERY_RESULTS.len()],
    pub rate_limited: AtomicU64,
    /// Payload bytes of the WebSocket data messages read from clients.
    pub bytes_in: AtomicU64,
    /// Payload bytes of the WebSocket data messages written to clients.
    pub bytes_out: AtomicU64,
    /// Sessions started, by transport (`labels::Transport`).
    pub transport_accepted: [AtomicU64; TRANSPORTS.len()],
    /// Sessions running, by transport: added to at the start, taken from at the end.
    pub transport_open: [AtomicU64; TRANSPORTS.len()],
}

impl Stats {
    pub fn closed(&self, reason: Option<CloseReason>) {
        self.closed[labels::close_reason(reason)].fetch_add(1, Ordering::Relaxed);
        if let Some(CloseReason::AuthFailed(failure)) = reason {
            self.auth_failures[labels::auth_failure(failure)].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn recovery(&self, joined: &JoinOutcome) {
        if let Some(i) = labels::recovery(joined) {
            self.recoveries[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn error_frame(&self, code: usize) {
        self.errors[code].fetch_add(1, Ordering::Relaxed);
    }

    pub fn slow_consumers(&self) -> u64 {
        let i = labels::close_reason(Some(CloseReason::SlowConsumer));
        self.closed[i].load(Ordering::Relaxed)
    }
}

/// The values of one fixed-label family, for the collector.
pub fn loads(counters: &[AtomicU64]) -> impl Iterator<Item = u64> + '_ {
    counters.iter().map(|c| c.load(Ordering::Relaxed))
}
