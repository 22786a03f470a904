//! Prometheus metrics (`GET /metrics` on the API listener): one registry per hub. What the hub and
//! the bridge count anyway (atomics, the connection table) is read at scrape time by a collector,
//! so the message path does no extra work for metrics; only what exists nowhere else (API requests
//! by route and status) is counted here.
//!
//! Names follow Prometheus conventions: `realtime_hub_` prefix, base units, counters registered
//! without `_total` (the encoder appends it). Served in the Prometheus text format 0.0.4, which
//! both a Prometheus server and `promtool check metrics` read.

use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::auth::UserSlots;
use crate::bridge::{Bridge, BridgeState};
use crate::hub::Hub;

/// The `Content-Type` of what [`Metrics::encode`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The labels of `realtime_hub_api_requests_total`: the route's path pattern (`unmatched` for
/// 404s, so a scanner cannot blow up the series count) and the status code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ApiRequest {
    pub route: &'static str,
    pub status: u16,
}

/// A hub's metrics registry. Extend it by registering more families in [`Metrics::new`] (values
/// kept elsewhere: add them to [`HubCollector`]).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    api_requests: Family<ApiRequest, Counter>,
}

impl Metrics {
    pub fn new(hub: Hub, bridge: Bridge, users: UserSlots) -> Self {
        let mut registry = Registry::default();
        let api_requests = Family::<ApiRequest, Counter>::default();
        registry.register(
            "realtime_hub_api_requests",
            "Server API requests answered, by route and HTTP status",
            api_requests.clone(),
        );
        registry.register_collector(Box::new(HubCollector { hub, bridge, users }));
        Metrics {
            registry,
            api_requests,
        }
    }

    pub fn api_request(&self, route: &'static str, status: u16) {
        self.api_requests
            .get_or_create(&ApiRequest { route, status })
            .inc();
    }

    /// The whole registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Reads the hub's and the bridge's own figures at scrape time.
#[derive(Debug)]
pub struct HubCollector {
    hub: Hub,
    bridge: Bridge,
    users: UserSlots,
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// `name` without `_total`: the encoder appends it.
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for HubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut encoder;
        gauge(
            e,
            "realtime_hub_connections",
            "WebSocket connections open on this hub.",
            count(self.hub.connections()),
        )?;
        gauge(
            e,
            "realtime_hub_rooms",
            "Rooms with at least one member on this hub.",
            count(self.hub.room_count()),
        )?;
        gauge(
            e,
            "realtime_hub_users",
            "Users with at least one authenticated connection on this hub (auth_mode = jwt).",
            count(self.users.users()),
        )?;
        let c = self.hub.counters();
        counter(
            e,
            "realtime_hub_messages_received",
            "Frames received from this hub's clients (past the rate limit).",
            c.received.load(Ordering::Relaxed),
        )?;
        counter(
            e,
            "realtime_hub_messages_delivered",
            "Frames queued for this hub's clients.",
            c.delivered.load(Ordering::Relaxed),
        )?;
        counter(
            e,
            "realtime_hub_slow_consumers",
            "Frames that found a client's queue full (the client is closed with 4000).",
            c.slow_consumers.load(Ordering::Relaxed),
        )?;
        // Standalone there is no Redis to be up or down: the bridge families are left out.
        let Some(b) = self.bridge.counters() else {
            return Ok(());
        };
        gauge(
            e,
            "realtime_hub_redis_up",
            "1 while both bridge connections to Redis are up, else 0.",
            i64::from(self.bridge.state() == BridgeState::Up),
        )?;
        let bridge_counters = [
            (
                "realtime_hub_bridge_published",
                "Messages this hub published to Redis.",
                &b.published,
            ),
            (
                "realtime_hub_bridge_overflowed",
                "Messages lost because the outage buffer (bridge_buffer) was full.",
                &b.overflowed,
            ),
            (
                "realtime_hub_bridge_received",
                "Messages of other hubs received from Redis.",
                &b.received,
            ),
            (
                "realtime_hub_bridge_own_dropped",
                "This hub's own messages dropped when they came back from Redis.",
                &b.own_dropped,
            ),
            (
                "realtime_hub_bridge_duplicates_dropped",
                "Messages received twice from Redis and dropped.",
                &b.duplicates_dropped,
            ),
            (
                "realtime_hub_bridge_missed",
                "Messages of other hubs that Redis never delivered here (sequence gaps).",
                &b.missed,
            ),
            (
                "realtime_hub_bridge_undecodable",
                "Messages from Redis that could not be decoded.",
                &b.undecodable,
            ),
            (
                "realtime_hub_bridge_reconnects",
                "Reconnections to Redis.",
                &b.reconnects,
            ),
        ];
        for (name, help, value) in bridge_counters {
            counter(e, name, help, value.load(Ordering::Relaxed))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standalone_hub_exposes_its_figures_and_api_requests() {
        let hub = Hub::new("h".into(), 10);
        let metrics = Metrics::new(hub.clone(), Bridge::Disabled, UserSlots::new(4));
        hub.counters().delivered.fetch_add(7, Ordering::Relaxed);
        metrics.api_request("/api/publish", 200);
        metrics.api_request("/api/publish", 200);
        metrics.api_request("unmatched", 404);
        let text = metrics.encode();
        for line in [
            "# TYPE realtime_hub_connections gauge",
            "realtime_hub_connections 0",
            "# TYPE realtime_hub_messages_delivered_total counter",
            "realtime_hub_messages_delivered_total 7",
            "realtime_hub_messages_received_total 0",
            "realtime_hub_api_requests_total{route=\"/api/publish\",status=\"200\"} 2",
            "realtime_hub_api_requests_total{route=\"unmatched\",status=\"404\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        assert!(!text.contains("redis_up"), "standalone: no bridge\n{text}");
        assert!(
            !text.contains("# EOF"),
            "0.0.4 text, not OpenMetrics\n{text}"
        );
    }
}
