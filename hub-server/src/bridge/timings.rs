//! How long the bridge's work takes, for `/metrics`: publish round trips to Redis and the lag of
//! other hubs' messages. Observed on the message path without a lock (see [`Histogram`]).

use std::time::Duration;

use crate::histogram::Histogram;

/// Round trips to Redis: from sub-millisecond on loopback to a `redis_timeout` (2 s).
pub const ROUND_TRIP_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Cross-hub lag: a bucket at exactly 1 s, where the alert is.
pub const LAG_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The bridge's timings, kept beside its counters (see [`BridgeCounters`](super::BridgeCounters)).
#[derive(Debug, Clone)]
pub struct BridgeTimings {
    /// One pipelined batch to Redis and its replies.
    pub publish_round_trip: Histogram,
    /// Another hub's publish to this hub's delivery.
    pub cross_hub_lag: Histogram,
}

impl Default for BridgeTimings {
    fn default() -> Self {
        BridgeTimings {
            publish_round_trip: Histogram::new(ROUND_TRIP_BOUNDS),
            cross_hub_lag: Histogram::new(LAG_BOUNDS),
        }
    }
}

impl BridgeTimings {
    /// A batch's round trip (once per batch: every message in it waited as long).
    pub fn publish_round_trip(&self, took: Duration) {
        self.publish_round_trip.observe(took);
    }

    /// A message of another hub delivered here now; `published_us` is the envelope's `t` (none
    /// from hubs older than it). Clocks of two machines differ: a message that seems to arrive
    /// before it was sent counts as 0, which the metric's help says.
    pub fn cross_hub_lag(&self, published_us: Option<u64>) {
        if let Some(published) = published_us {
            let now = crate::clock::unix_micros();
            self.cross_hub_lag
                .observe(Duration::from_micros(now.saturating_sub(published)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lag_from_a_clock_ahead_of_ours_counts_as_zero() {
        let t = BridgeTimings::default();
        let future = crate::clock::unix_micros() + 60_000_000;
        t.cross_hub_lag(Some(future));
        t.cross_hub_lag(None);
        assert_eq!(
            t.cross_hub_lag.count(),
            1,
            "an old hub's envelope is not observed"
        );
        assert!(
            crate::histogram::exposition(&t.cross_hub_lag)
                .contains("t_seconds_bucket{le=\"0.0005\"} 1")
        );
    }
}
