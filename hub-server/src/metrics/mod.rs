//! Prometheus metrics (`GET /metrics` on the API listener): one registry per hub.
//!
//! - [`collector`] reads at scrape time what the hub and the bridge keep anyway (atomics, the
//!   connection table, the bridge's queue), the process (`/proc/self`) and the tokio runtime;
//! - [`stats`] holds what only the metrics need, counted by the session, the join and the
//!   socket wrapper of [`socket`] through the methods here: one relaxed atomic add each, in arrays
//!   indexed by the fixed label values of [`labels`] (never a room or a user);
//!
//! Names follow Prometheus conventions: `realtime_hub_` prefix, base units, counters registered
//! without `_total` (the encoder appends it), `_seconds` histograms. Served in the Prometheus text
//! format 0.0.4, which both a Prometheus server and `promtool check metrics` read.

mod collector;
pub mod labels;
pub mod process;
pub mod socket;
pub mod stats;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

pub use socket::Counted;

use crate::auth::UserSlots;
use crate::bridge::Bridge;
use crate::error::CloseReason;
use crate::hub::Hub;
use crate::protocol::JoinOutcome;
use stats::Stats;

/// The `Content-Type` of what [`Metrics::encode`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The labels of `realtime_hub_api_requests_total`: the route's path pattern (`unmatched` for
/// 404s, so a scanner cannot blow up the series count) and the status code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ApiRequest {
    pub route: &'static str,
    pub status: u16,
}

/// The labels of `realtime_hub_proxy_calls_total`: which proxy (`connect`, `subscribe`,
/// `publish`, `rpc`) and how the call ended (`allowed`, `replaced`, `refused`, or why it failed:
/// `busy`, `timeout`, `unreachable`, `status`, `bad_answer`). Both fixed sets: no room or user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProxyCall {
    pub kind: &'static str,
    pub outcome: &'static str,
}

/// A hub's metrics registry and the counters only it needs.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    api_requests: Family<ApiRequest, Counter>,
    proxy_calls: Family<ProxyCall, Counter>,
    /// Shared with every client socket's [`Counted`] wrapper.
    stats: Arc<Stats>,
}

impl Metrics {
    pub fn new(hub: Hub, bridge: Bridge, users: UserSlots) -> Self {
        let mut registry = Registry::default();
        let stats = Arc::new(Stats::default());
        registry.register_collector(Box::new(collector::HubCollector {
            hub,
            bridge,
            users,
            stats: stats.clone(),
            started: SystemTime::now(),
        }));
        let api_requests = Family::<ApiRequest, Counter>::default();
        registry.register(
            "realtime_hub_api_requests",
            "Server API requests answered, by route and HTTP status",
            api_requests.clone(),
        );
        let proxy_calls = Family::<ProxyCall, Counter>::default();
        // Every series from the start, at 0, as the other labelled families (see `labels`).
        for &kind in labels::PROXY_KINDS {
            for &outcome in labels::PROXY_OUTCOMES {
                let _ = proxy_calls.get_or_create(&ProxyCall { kind, outcome });
            }
        }
        registry.register(
            "realtime_hub_proxy_calls",
            "Calls to the backend's proxies, by proxy and outcome",
            proxy_calls.clone(),
        );
        Metrics {
            registry,
            api_requests,
            proxy_calls,
            stats,
        }
    }

    /// With webhooks on: their counters too (see [`webhooks`]).
    pub fn with_webhooks(mut self, counters: Option<Arc<crate::webhooks::Counters>>) -> Self {
        if let Some(counters) = counters {
            self.registry
                .register_collector(Box::new(webhooks::WebhooksCollector { counters }));
        }
        self
    }

    /// A client's upgraded socket, counted as accepted; every message through it is counted
    /// (bytes, error frames): the session reads and writes through what this returns.
    pub fn accepted<S>(&self, socket: S) -> Counted<S> {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Counted::new(socket, self.stats.clone())
    }

    /// A session started over `transport` (`accepted` counts its socket besides).
    pub fn transport_opened(&self, transport: crate::transport::Transport) {
        let i = transport.index();
        self.stats.transport_accepted[i].fetch_add(1, Ordering::Relaxed);
        self.stats.transport_open[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A session over `transport` ended (once per [`Metrics::transport_opened`]).
    pub fn transport_closed(&self, transport: crate::transport::Transport) {
        self.stats.transport_open[transport.index()].fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection ended: `None` when the client left, else why the hub closed it (auth
    /// failures and slow consumers are counted from this too).
    pub fn closed(&self, reason: Option<CloseReason>) {
        self.stats.closed(reason);
    }

    /// Clients closed as slow consumers (their queue filled up), as `/health` and
    /// `realtime_hub_slow_consumers_total` both say.
    pub fn slow_consumers(&self) -> u64 {
        self.stats.slow_consumers()
    }

    /// A frame refused by the rate limit.
    pub fn rate_limited(&self) {
        self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// A join answered: counted when it asked to recover (`since`).
    pub fn joined(&self, outcome: &JoinOutcome) {
        self.stats.recovery(outcome);
    }

    /// Not on the message path: the API is for backends, and its label set is bounded by
    /// `Route::ALL` × the statuses it answers.
    pub fn api_request(&self, route: &'static str, status: u16) {
        self.api_requests
            .get_or_create(&ApiRequest { route, status })
            .inc();
    }

    /// A backend proxy call ended with `outcome` (see [`ProxyCall`]).
    pub fn proxy_call(&self, kind: &'static str, outcome: &'static str) {
        self.proxy_calls
            .get_or_create(&ProxyCall { kind, outcome })
            .inc();
    }

    /// The whole registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AuthFailure;

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

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
            assert!(has(&text, line), "{line:?} missing in\n{text}");
        }
        assert!(!text.contains("redis_up"), "standalone: no bridge\n{text}");
        assert!(
            !text.contains("cross_hub_lag"),
            "standalone: no bridge\n{text}"
        );
        assert!(
            !text.contains("# EOF"),
            "0.0.4 text, not OpenMetrics\n{text}"
        );
    }

    #[test]
    fn closes_count_by_reason_with_auth_failures_and_slow_consumers_and_every_series_exists() {
        let metrics = Metrics::new(
            Hub::new("h".into(), 10),
            Bridge::Disabled,
            UserSlots::new(4),
        );
        metrics.closed(None);
        metrics.closed(Some(CloseReason::SlowConsumer));
        metrics.closed(Some(CloseReason::AuthFailed(AuthFailure::BadSignature)));
        metrics.rate_limited();
        metrics.joined(&JoinOutcome {
            recovered: Some(false),
            reason: Some("too_old"),
            ..JoinOutcome::default()
        });
        metrics.joined(&JoinOutcome::default());
        metrics.proxy_call("publish", "refused");
        metrics.proxy_call("publish", "refused");
        metrics.proxy_call("connect", "timeout");
        let text = metrics.encode();
        for line in [
            "realtime_hub_connections_closed_total{reason=\"client\"} 1",
            "realtime_hub_connections_closed_total{reason=\"slow_consumer\"} 1",
            "realtime_hub_connections_closed_total{reason=\"auth_failed\"} 1",
            "realtime_hub_connections_closed_total{reason=\"pong_timeout\"} 0",
            "realtime_hub_slow_consumers_total 1",
            "realtime_hub_auth_failures_total{reason=\"bad_signature\"} 1",
            "realtime_hub_auth_failures_total{reason=\"no_token\"} 0",
            "realtime_hub_rate_limited_total 1",
            "realtime_hub_recoveries_total{result=\"too_old\"} 1",
            "realtime_hub_recoveries_total{result=\"recovered\"} 0",
            "realtime_hub_errors_total{code=\"bad_json\"} 0",
            "realtime_hub_proxy_calls_total{kind=\"publish\",outcome=\"refused\"} 2",
            "realtime_hub_proxy_calls_total{kind=\"connect\",outcome=\"timeout\"} 1",
            "realtime_hub_proxy_calls_total{kind=\"rpc\",outcome=\"busy\"} 0",
        ] {
            assert!(has(&text, line), "{line:?} missing in\n{text}");
        }
        #[cfg(target_os = "linux")]
        assert!(
            text.contains("\nrealtime_hub_process_resident_memory_bytes "),
            "{text}"
        );
    }
}
