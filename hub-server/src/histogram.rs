//! Histograms of durations in seconds that the message path can feed without a lock: an
//! observation is two relaxed atomic adds (its bucket and the sum in microseconds) after a short
//! scan of fixed bounds. prometheus-client's `Histogram` takes a mutex per observation; these are
//! read at scrape time instead, where a bucket may be one observation ahead of the sum (the count
//! is the buckets' total, so count and buckets always agree).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

#[derive(Debug)]
struct Inner {
    /// Upper bounds in microseconds, ascending; `counts` has one more slot (`+Inf`).
    bounds_us: Box<[u64]>,
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

/// A cloneable handle: clones observe into the same buckets.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Inner>);

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        let bounds_us = bounds.iter().map(|b| (b * 1e6).round() as u64).collect();
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram(Arc::new(Inner {
            bounds_us,
            bounds,
            counts,
            sum_us: AtomicU64::new(0),
        }))
    }

    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let inner = &*self.0;
        let at = inner
            .bounds_us
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(inner.bounds_us.len());
        inner.counts[at].fetch_add(1, Ordering::Relaxed);
        inner.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let inner = &*self.0;
        let counts: Vec<u64> = inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(counts.iter().copied())
            .collect();
        let sum = inner.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// `h` in the Prometheus text format, registered as `t_seconds`: what tests read back.
#[cfg(test)]
pub(crate) fn exposition(h: &Histogram) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register("t_seconds", "test", h.clone());
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).expect("encode");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets_with_sum_and_count() {
        let h = Histogram::new(&[0.001, 1.0]);
        h.observe(Duration::from_micros(1000));
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(3));
        let out = exposition(&h);
        for line in [
            "t_seconds_bucket{le=\"0.001\"} 1",
            "t_seconds_bucket{le=\"1\"} 2",
            "t_seconds_bucket{le=\"+Inf\"} 3",
            "t_seconds_sum 3.501",
            "t_seconds_count 3",
        ] {
            assert!(out.lines().any(|l| l == line), "{line:?} missing in\n{out}");
        }
        assert_eq!(out.matches("le=\"+Inf\"").count(), 1, "{out}");
    }
}
