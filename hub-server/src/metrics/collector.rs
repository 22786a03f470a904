//! Everything `/metrics` shows besides the API requests, read at scrape time: the hub's and the
//! bridge's own figures (atomics, the connection table, the bridge's queue), what [`Stats`]
//! counted, the bridge's histograms, the process and the tokio runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::labels::{AUTH_FAILURES, CLOSE_REASONS, ERROR_CODES, RECOVERY_RESULTS, TRANSPORTS};
use super::process::{self, unix_seconds};
use super::stats::{Stats, loads};
use crate::auth::UserSlots;
use crate::bridge::{Bridge, BridgeState};
use crate::hub::Hub;

#[derive(Debug)]
pub struct HubCollector {
    pub hub: Hub,
    pub bridge: Bridge,
    pub users: UserSlots,
    pub stats: Arc<Stats>,
    pub started: SystemTime,
}

fn gauge<V>(e: &mut DescriptorEncoder, name: &str, help: &str, value: V) -> std::fmt::Result
where
    ConstGauge<V>: EncodeMetric,
{
    let gauge = ConstGauge::new(value);
    gauge.encode(e.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// `name` without `_total`: the encoder appends it.
fn counter<V>(e: &mut DescriptorEncoder, name: &str, help: &str, value: V) -> std::fmt::Result
where
    ConstCounter<V>: EncodeMetric,
{
    let counter = ConstCounter::new(value);
    counter.encode(e.encode_descriptor(name, help, None, counter.metric_type())?)
}

/// A counter family with one fixed label, every value exported (0 included).
fn counters(
    e: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    label: &str,
    values: &[&str],
    counts: &[AtomicU64],
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in values.iter().zip(loads(counts)) {
        ConstCounter::new(count).encode(family.encode_family(&[(label, *value)])?)?;
    }
    Ok(())
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Collector for HubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut encoder;
        self.clients(e)?;
        self.bridge(e)?;
        self.process(e)
    }
}

impl HubCollector {
    fn clients(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let s = &*self.stats;
        gauge(
            e,
            "realtime_hub_connections",
            "WebSocket connections open on this hub.",
            count(self.hub.connections()),
        )?;
        counter(
            e,
            "realtime_hub_connections_accepted",
            "WebSocket connections upgraded by this hub.",
            load(&s.accepted),
        )?;
        counters(
            e,
            (
                "realtime_hub_transport_connections_accepted",
                "Client sessions started, by transport (ws: WebSocket, sse: the SSE fallback).",
            ),
            "transport",
            TRANSPORTS,
            &s.transport_accepted,
        )?;
        {
            let mut open = e.encode_descriptor(
                "realtime_hub_transport_connections",
                "Client sessions running, by transport (ws: WebSocket, sse: the SSE fallback).",
                None,
                MetricType::Gauge,
            )?;
            for (value, n) in TRANSPORTS.iter().zip(loads(&s.transport_open)) {
                ConstGauge::new(n).encode(open.encode_family(&[("transport", *value)])?)?;
            }
        }
        counters(
            e,
            (
                "realtime_hub_connections_closed",
                "WebSocket connections ended, by reason (client: the client left or the connection was lost).",
            ),
            "reason",
            CLOSE_REASONS,
            &s.closed,
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
            load(&c.received),
        )?;
        counter(
            e,
            "realtime_hub_messages_delivered",
            "Room messages and broadcasts queued for this hub's clients (one per recipient).",
            load(&c.delivered),
        )?;
        counter(
            e,
            "realtime_hub_received_bytes",
            "Payload bytes of the WebSocket messages read from clients.",
            load(&s.bytes_in),
        )?;
        counter(
            e,
            "realtime_hub_sent_bytes",
            "Payload bytes of the WebSocket messages written to clients.",
            load(&s.bytes_out),
        )?;
        counters(
            e,
            (
                "realtime_hub_errors",
                "Error frames sent to clients, by code (the connection stays open).",
            ),
            "code",
            ERROR_CODES,
            &s.errors,
        )?;
        counter(
            e,
            "realtime_hub_rate_limited",
            "Frames refused by the per-connection rate limit.",
            load(&s.rate_limited),
        )?;
        counter(
            e,
            "realtime_hub_slow_consumers",
            "Clients closed with 4000 because their send queue filled up.",
            s.slow_consumers(),
        )?;
        counters(
            e,
            (
                "realtime_hub_auth_failures",
                "Tokens refused (close 4001), by reason.",
            ),
            "reason",
            AUTH_FAILURES,
            &s.auth_failures,
        )?;
        counters(
            e,
            (
                "realtime_hub_recoveries",
                "Joins with since (history recovery after a reconnect), by result.",
            ),
            "result",
            RECOVERY_RESULTS,
            &s.recoveries,
        )
    }

    /// Standalone there is no Redis to be up or down: the bridge families are left out.
    fn bridge(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let (Some(b), Some(queues)) = (self.bridge.counters(), self.bridge.queues()) else {
            return Ok(());
        };
        gauge(
            e,
            "realtime_hub_redis_up",
            "1 while the bridge can publish to and receive from Redis (on a cluster: some master), else 0.",
            i64::from(self.bridge.state() == BridgeState::Up),
        )?;
        gauge(
            e,
            "realtime_hub_redis_subscribed_channels",
            "Redis channels the subscriber connection is subscribed to (rooms with local members, broadcast, control).",
            count(queues.subscribed_channels),
        )?;
        gauge(
            e,
            "realtime_hub_bridge_buffered",
            "Messages handed to the publisher and not yet answered by Redis (queued, held while their master is down, or on their way); at most bridge_buffer.",
            count(queues.buffered),
        )?;
        let bridge_counters = [
            (
                "realtime_hub_bridge_published",
                "Messages this hub published to Redis.",
                &b.published,
            ),
            (
                "realtime_hub_bridge_failed",
                "Messages Redis refused with an error reply (not published, not stored).",
                &b.failed,
            ),
            (
                "realtime_hub_bridge_overflowed",
                "Messages lost because the outage buffer (bridge_buffer) was full.",
                &b.overflowed,
            ),
            (
                "realtime_hub_bridge_received",
                "Messages received from Redis and delivered here (other hubs', and this hub's stored ones).",
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
                "realtime_hub_bridge_inbound_shed",
                "Messages from Redis shed because this hub's inbound queue was full (inbound_buffer).",
                &b.inbound_shed,
            ),
            (
                "realtime_hub_bridge_caught_up",
                "Stored room messages missed while a subscription was lost, delivered from the history once it was back.",
                &b.caught_up,
            ),
            (
                "realtime_hub_bridge_catch_up_failed",
                "Rooms not caught up after a lost subscription (history read failed, or too busy to hold): members recover the gap.",
                &b.catch_up_failed,
            ),
            (
                "realtime_hub_bridge_undecodable",
                "Messages from Redis that could not be decoded.",
                &b.undecodable,
            ),
            (
                "realtime_hub_bridge_reconnects",
                "Connections the publisher made to Redis, the first one included.",
                &b.reconnects,
            ),
        ];
        for (name, help, value) in bridge_counters {
            counter(e, name, help, load(value))?;
        }
        let t = &b.timings;
        t.publish_round_trip.encode(e.encode_descriptor(
            "realtime_hub_bridge_publish_round_trip_seconds",
            "Round trip of one pipelined batch of publishes to Redis, sent to last reply.",
            None,
            MetricType::Histogram,
        )?)?;
        t.cross_hub_lag.encode(e.encode_descriptor(
            "realtime_hub_cross_hub_lag_seconds",
            "From another hub's publish to Redis to delivery to this hub's clients, by the two hubs' wall clocks: skew between machines adds to it, and a negative lag (a clock behind) counts as 0.",
            None,
            MetricType::Histogram,
        )?)
    }

    fn process(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        gauge(
            e,
            "realtime_hub_process_start_time_seconds",
            "When this hub started, in seconds since the Unix epoch.",
            unix_seconds(self.started),
        )?;
        if let Some(p) = process::read() {
            counter(
                e,
                "realtime_hub_process_cpu_seconds",
                "User and system CPU time of this hub's process.",
                p.cpu_seconds,
            )?;
            gauge(
                e,
                "realtime_hub_process_resident_memory_bytes",
                "Resident memory of this hub's process.",
                count_u64(p.resident_bytes),
            )?;
            gauge(
                e,
                "realtime_hub_process_virtual_memory_bytes",
                "Virtual memory of this hub's process.",
                count_u64(p.virtual_bytes),
            )?;
            gauge(
                e,
                "realtime_hub_process_open_fds",
                "Open file descriptors (each connection holds one).",
                count_u64(p.open_fds),
            )?;
            if let Some(max) = p.max_fds {
                gauge(
                    e,
                    "realtime_hub_process_max_fds",
                    "The soft limit of open file descriptors.",
                    count_u64(max),
                )?;
            }
            gauge(
                e,
                "realtime_hub_process_threads",
                "Threads of this hub's process.",
                count_u64(p.threads),
            )?;
        }
        if let Some(r) = process::runtime() {
            gauge(
                e,
                "realtime_hub_tokio_workers",
                "Worker threads of the tokio runtime.",
                count(r.workers),
            )?;
            gauge(
                e,
                "realtime_hub_tokio_alive_tasks",
                "Tasks alive in the tokio runtime (about two per connection).",
                count(r.alive_tasks),
            )?;
            gauge(
                e,
                "realtime_hub_tokio_global_queue_depth",
                "Tasks waiting in the tokio runtime's global queue.",
                count(r.global_queue_depth),
            )?;
            counter(
                e,
                "realtime_hub_tokio_worker_busy_seconds",
                "Time the tokio workers spent busy, summed over workers.",
                r.busy.as_secs_f64(),
            )?;
        }
        Ok(())
    }
}

fn count_u64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
