//! The webhook counters on `/metrics`, read at scrape time from [`crate::webhooks::Counters`]:
//! events queued by this hub, sent and dropped by it (only the hub holding the sender's lease
//! sends, so `sent` adds up across the cluster, not per hub), and refused POSTs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use crate::webhooks::Counters;

#[derive(Debug)]
pub struct WebhooksCollector {
    pub counters: Arc<Counters>,
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Collector for WebhooksCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let c = &self.counters;
        // Names without `_total`: the encoder appends it.
        for (name, help, value) in [
            (
                "realtime_hub_webhook_events_queued",
                "Webhook events this hub emitted into the cluster's queue",
                load(&c.emitted),
            ),
            (
                "realtime_hub_webhook_events_sent",
                "Webhook events this hub sent and the backend answered 2xx",
                load(&c.delivered),
            ),
            (
                "realtime_hub_webhook_posts_failed",
                "Webhook POSTs not answered 2xx (retried with backoff)",
                load(&c.failed_posts),
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let mut family = encoder.encode_descriptor(
            "realtime_hub_webhook_events_dropped",
            "Webhook events dropped unsent: the local queue was full, or older than webhook_max_age",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in [
            ("queue_full", load(&c.overflowed)),
            ("expired", load(&c.expired)),
        ] {
            ConstCounter::new(value).encode(family.encode_family(&[("reason", reason)])?)?;
        }
        Ok(())
    }
}
