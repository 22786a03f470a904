//! What every subscriber task of a load point shares and returns, whatever its transport
//! (`load` for WebSocket subscribers, `load_sse` for SSE ones): the clock and latency histograms,
//! and each subscriber's outcome.

use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::time::Instant as TokioInstant;

use crate::payload::{self, Stamp};
use crate::tracker::Tracker;

/// Latency histograms, sharded so that subscribers rarely wait on one another's lock.
pub const HISTOGRAM_SHARDS: usize = 16;

/// Latencies a subscriber buffers before taking a shard lock.
pub const LOCAL_BATCH: usize = 256;

/// Shared by every subscriber task: the clock origin and the latency histograms.
pub struct Shared {
    pub epoch: Instant,
    /// When the first message is due: wire bytes count from here (what came before is joins and
    /// presence, read during the warm-up).
    pub window_start: TokioInstant,
    pub window_end_ns: u64,
    pub histograms: Vec<Mutex<Histogram<u64>>>,
}

impl Shared {
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    pub fn flush(&self, shard: usize, batch: &mut Vec<u64>) {
        if batch.is_empty() {
            return;
        }
        // A poisoned shard only means another task panicked mid-record; its counts are still usable.
        let mut h = self.histograms[shard % HISTOGRAM_SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for &us in batch.iter() {
            h.saturating_record(us.max(1));
        }
        batch.clear();
    }
}

pub struct SubscriberOutcome {
    pub tracker: Tracker,
    pub in_window: u64,
    /// Why the connection ended before the drain did, if it did.
    pub disconnected: Option<String>,
    pub error_frames: u64,
    pub wire_bytes: u64,
}

/// What one subscriber counts while it reads, whatever its transport: each delivery into its
/// tracker, the measuring window and its latency batch.
pub struct Tally {
    index: usize,
    tracker: Tracker,
    in_window: u64,
    batch: Vec<u64>,
}

impl Tally {
    pub fn new(index: usize, tracker: Tracker) -> Self {
        Tally {
            index,
            tracker,
            in_window: 0,
            batch: Vec::with_capacity(LOCAL_BATCH),
        }
    }

    /// Counts `text` when it carries a bench stamp; false when it is another frame.
    pub fn delivery(&mut self, text: &str, shared: &Shared) -> bool {
        let Some(Stamp {
            publisher,
            seq,
            send_ns,
        }) = payload::find_stamp(text)
        else {
            return false;
        };
        let now = shared.now_ns();
        self.tracker.record(publisher, seq);
        if now <= shared.window_end_ns {
            self.in_window += 1;
        }
        self.batch.push(now.saturating_sub(send_ns) / 1000);
        if self.batch.len() >= LOCAL_BATCH {
            shared.flush(self.index, &mut self.batch);
        }
        true
    }

    /// The outcome once reading has stopped; the last latencies go into the histograms.
    pub fn finish(
        mut self,
        shared: &Shared,
        disconnected: Option<String>,
        error_frames: u64,
        wire_bytes: u64,
    ) -> SubscriberOutcome {
        shared.flush(self.index, &mut self.batch);
        SubscriberOutcome {
            tracker: self.tracker,
            in_window: self.in_window,
            disconnected,
            error_frames,
            wire_bytes,
        }
    }
}
