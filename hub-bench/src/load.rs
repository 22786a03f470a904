//! One load point: N subscribers in one room spread over the hubs, P open-loop publishers, then a drain,
//! then the accounting (throughput, latency from the *scheduled* send time, loss, duplicates, reorders,
//! CPU per delivery of the hub and Redis processes).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{ConnectOpts, Protocol, Ws, open_many};
use crate::error::BenchError;
use crate::filler::{self, PayloadStyle};
use crate::load_shared::{HISTOGRAM_SHARDS, Shared, SubscriberOutcome, Tally};
use crate::load_sse as sse;
use crate::payload::Stamp;
use crate::procstat;
use crate::redisstat::{self, CommandStat};
use crate::tracker::{Counts, Tracker};

/// A run is "sustainable" when nothing is lost or dropped and p99 stays under this.
pub const SUSTAINABLE_P99_MS: f64 = 50.0;
/// CPU taken by anything but the processes under test and the tool (other processes, or the
/// hypervisor's steal), in % of one core, above which a point says it was disturbed.
pub const DISTURBED_PCT: f64 = 10.0;

/// `hub-bench load`: one load point.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadConfig {
    /// Label in the results ("ours", "socketio").
    #[arg(long)]
    pub target: String,
    #[arg(long, value_enum)]
    pub proto: Protocol,
    #[command(flatten)]
    pub connect: ConnectOpts,
    /// The room every subscriber and publisher joins.
    #[arg(long, default_value = "bench")]
    pub room: String,
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    /// Offered deliveries per second: messages/s × subscribers.
    #[arg(long, value_name = "DELIVERIES_PER_S", default_value_t = 50_000.0)]
    pub rate: f64,
    /// The send window.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Pause between the last join and the first message.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Time after the send window for late deliveries to arrive.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Padding added to each message's content.
    #[arg(long, default_value_t = 0)]
    pub payload_bytes: usize,
    /// What follows each message's stamp (see `filler`).
    #[arg(long, value_enum, default_value_t)]
    pub payload_style: PayloadStyle,
    /// Hub processes whose CPU is measured (repeat or separate with commas).
    #[arg(long = "hub-pid", value_name = "PID", value_delimiter = ',')]
    pub hub_pids: Vec<u32>,
    /// Redis processes whose CPU is measured.
    #[arg(long = "redis-pid", value_name = "PID", value_delimiter = ',')]
    pub redis_pids: Vec<u32>,
    /// `host:port` of the Redis behind the hubs: its `INFO commandstats` is read around the window.
    #[arg(long, value_name = "HOST:PORT")]
    pub redis_addr: Option<String>,
    /// How the subscribers reach the hubs: WebSocket, or the SSE fallback (`--proto hub` only;
    /// publishers stay on WebSocket).
    #[arg(long, value_enum, default_value_t)]
    pub subscriber_transport: SubscriberTransport,
    /// Publishers do not join the room: each message goes to the subscribers alone, and a
    /// publisher reads nothing but the answers to what it sent (an error frame is a refusal).
    #[arg(long)]
    pub publishers_outside: bool,
    /// Other processes of the system under test (a hooks backend): their CPU is reported apart
    /// and not counted as another process's disturbance.
    #[arg(long = "backend-pid", value_name = "PID", value_delimiter = ',')]
    pub backend_pids: Vec<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberTransport {
    #[default]
    Ws,
    Sse,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub samples: u64,
    /// How late the tool itself sent (flush time − due time), p99 over all messages: the part of
    /// the latency above that is the tool's timer and CPU, not the server's.
    pub send_lag_p99_ms: f64,
    pub send_lag_max_ms: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadResult {
    pub kind: &'static str,
    pub target: String,
    pub protocol: Protocol,
    pub hubs: usize,
    /// The tool offered permessage-deflate (`--deflate`).
    pub deflate: bool,
    pub payload_style: PayloadStyle,
    pub subscribers: usize,
    pub subscriber_transport: SubscriberTransport,
    pub publishers: usize,
    pub offered_deliveries_per_s: f64,
    pub offered_msgs_per_s: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub expected_deliveries: u64,
    #[serde(flatten)]
    pub counts: Counts,
    /// Deliveries received before the end of the send window, per second of the window.
    pub delivered_per_s: f64,
    pub disconnects: u64,
    /// Why connections ended early: the close code and reason the server sent, or the error.
    pub disconnect_reasons: BTreeMap<String, u64>,
    pub error_frames: u64,
    /// Of `error_frames`, those the publishers got: messages the hubs refused.
    pub publisher_error_frames: u64,
    pub publishers_outside: bool,
    /// Bytes the subscribers read from their sockets from the first message's due time on (frame
    /// headers and payloads, compressed when deflate was agreed) per delivery.
    pub wire_bytes_per_delivery: f64,
    pub latency: Latency,
    pub connect_per_s: f64,
    pub hub_cpu_us_per_delivery: f64,
    pub redis_cpu_us_per_delivery: f64,
    /// CPU per message sent: what a message costs whatever the size of the room.
    pub hub_cpu_us_per_msg: f64,
    pub redis_cpu_us_per_msg: f64,
    /// Redis's own statistics over send + drain (empty without `--redis-addr`).
    pub redis_commands: Vec<CommandStat>,
    /// Seconds of send + drain: the window the CPU per delivery / message, the other processes' CPU
    /// and Redis's statistics cover.
    pub window_s: f64,
    /// Utilization while sending (% of one core): the drain after it is mostly idle and would dilute it.
    pub hub_cpu_pct: f64,
    pub redis_cpu_pct: f64,
    pub tool_cpu_pct: f64,
    /// The `--backend-pid` processes while sending (% of one core), and per message sent.
    pub backend_cpu_pct: f64,
    pub backend_cpu_us_per_msg: f64,
    /// CPU of every other process on the machine during send + drain, % of one core.
    pub other_cpu_pct: f64,
    /// CPU the hypervisor took from this VM meanwhile, % of one core.
    pub steal_cpu_pct: f64,
    /// Other processes or the hypervisor took more than [`DISTURBED_PCT`]: the figures are not
    /// the servers' alone (bench/run.sh repeats such a point when it fails).
    pub disturbed: bool,
    pub tool_cores: usize,
    pub sustainable: bool,
    /// Past the target's capacity: deliveries lost, connections dropped, or under 95% delivered in
    /// the send window. (Unsustainable but not saturated = every message arrives, only late.)
    pub saturated: bool,
}

/// The room's subscribers, connected, by transport.
enum Subscribers {
    Ws(Vec<Ws>),
    Sse(Vec<sse::SseStream>),
}

struct PublisherOutcome {
    sent: u64,
    disconnected: Option<String>,
    error_frames: u64,
    /// Per message: µs from its due time to the flush that sent it.
    send_lag: Histogram<u64>,
}

pub async fn run(cfg: &LoadConfig) -> Result<LoadResult, BenchError> {
    if cfg.connect.urls.is_empty() || cfg.subscribers == 0 || cfg.publishers == 0 || cfg.rate <= 0.0
    {
        return Err(BenchError::Usage(
            "need urls, subscribers, publishers and a positive rate".into(),
        ));
    }
    let msgs_per_s = cfg.rate / cfg.subscribers as f64;
    let per_pub_interval_ns = (1e9 * cfg.publishers as f64 / msgs_per_s) as u64;
    let max_seq = cfg.duration.as_nanos() as u64 / per_pub_interval_ns.max(1) + 2;

    // Connect subscribers, then publishers, all joined to the room before anything is sent.
    let connect_start = Instant::now();
    let subs = match cfg.subscriber_transport {
        SubscriberTransport::Ws => Subscribers::Ws(connect_many(cfg, cfg.subscribers, 0).await?),
        SubscriberTransport::Sse => {
            if cfg.proto != Protocol::Hub {
                return Err(BenchError::Usage("SSE subscribers need --proto hub".into()));
            }
            Subscribers::Sse(sse::open_many(&cfg.connect, &cfg.room, cfg.subscribers).await?)
        }
    };
    let connect_per_s = cfg.subscribers as f64 / connect_start.elapsed().as_secs_f64();
    let pub_room = (!cfg.publishers_outside).then_some(cfg.room.as_str());
    let pubs = open_many(
        cfg.proto,
        &cfg.connect,
        pub_room,
        cfg.publishers,
        cfg.subscribers,
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;

    let epoch = Instant::now();
    // Joins ack before a hub's Redis SUBSCRIBE may have completed: wait, then start on a common schedule.
    let start_ns = (cfg.warmup + Duration::from_millis(20)).as_nanos() as u64;
    let end_ns = start_ns + cfg.duration.as_nanos() as u64;
    let shared = Arc::new(Shared {
        epoch,
        window_start: TokioInstant::from_std(epoch + Duration::from_nanos(start_ns)),
        window_end_ns: end_ns,
        histograms: (0..HISTOGRAM_SHARDS)
            .map(|_| Mutex::new(latency_histogram()))
            .collect(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);

    let sub_tasks: Vec<_> = match subs {
        Subscribers::Ws(subs) => subs
            .into_iter()
            .enumerate()
            .map(|(i, ws)| {
                let tracker = Tracker::new(cfg.publishers, max_seq);
                tokio::spawn(subscriber(
                    ws,
                    cfg.proto,
                    i,
                    tracker,
                    shared.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect(),
        Subscribers::Sse(subs) => subs
            .into_iter()
            .enumerate()
            .map(|(i, stream)| {
                let tracker = Tracker::new(cfg.publishers, max_seq);
                tokio::spawn(sse::subscriber(
                    stream,
                    i,
                    tracker,
                    shared.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect(),
    };
    let pub_tasks: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(p, ws)| {
            // Stagger publishers over one interval so the room sees an even stream.
            let first_ns = start_ns + per_pub_interval_ns * p as u64 / cfg.publishers as u64;
            let job = PublishJob {
                proto: cfg.proto,
                room: cfg.room.clone(),
                id: p as u32,
                first_ns,
                interval_ns: per_pub_interval_ns,
                end_ns,
                payload_bytes: cfg.payload_bytes,
                payload_style: cfg.payload_style,
            };
            tokio::spawn(publisher(ws, job, epoch, stop_rx.clone()))
        })
        .collect();

    tokio::time::sleep_until(TokioInstant::from_std(
        epoch + Duration::from_nanos(start_ns),
    ))
    .await;
    let redis_before = redis_snapshot(cfg).await?;
    let cpu_before = CpuSnapshot::take(cfg)?;
    let wall_before = Instant::now();

    // Publishers stop on their own at end_ns; subscribers get the drain period to catch up.
    tokio::time::sleep_until(TokioInstant::from_std(epoch + Duration::from_nanos(end_ns))).await;
    let cpu_sent = CpuSnapshot::take(cfg)?;
    let send_wall = wall_before.elapsed().as_secs_f64();
    tokio::time::sleep_until(TokioInstant::from_std(
        epoch + Duration::from_nanos(end_ns) + cfg.drain,
    ))
    .await;
    let cpu_after = CpuSnapshot::take(cfg)?;
    let wall = wall_before.elapsed().as_secs_f64();
    let redis_commands = match (redis_before, redis_snapshot(cfg).await?) {
        (Some(before), Some(after)) => redisstat::diff(&before, &after),
        _ => Vec::new(),
    };
    let _ = stop_tx.send(true);

    let mut sent = vec![0u64; cfg.publishers];
    let (mut disconnects, mut error_frames, mut publisher_error_frames) = (0u64, 0u64, 0u64);
    let mut disconnect_reasons = BTreeMap::new();
    let mut count_reason = |reason: Option<String>| {
        if let Some(reason) = reason {
            disconnects += 1;
            *disconnect_reasons.entry(reason).or_insert(0u64) += 1;
        }
    };
    let mut send_lag = latency_histogram();
    for (p, task) in pub_tasks.into_iter().enumerate() {
        let out = task
            .await
            .map_err(|e| BenchError::Task(format!("publisher task: {e}")))?;
        sent[p] = out.sent;
        send_lag.add(&out.send_lag).expect("same bounds");
        count_reason(out.disconnected);
        error_frames += out.error_frames;
        publisher_error_frames += out.error_frames;
    }
    let mut counts = Counts::default();
    let (mut in_window, mut wire_bytes) = (0u64, 0u64);
    for task in sub_tasks {
        let out = task
            .await
            .map_err(|e| BenchError::Task(format!("subscriber task: {e}")))?;
        counts += out.tracker.finish(&sent);
        in_window += out.in_window;
        wire_bytes += out.wire_bytes;
        count_reason(out.disconnected);
        error_frames += out.error_frames;
    }

    let mut merged = latency_histogram();
    for h in &shared.histograms {
        let h = h.lock().unwrap_or_else(|p| p.into_inner());
        merged.add(&*h).expect("same bounds");
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let latency = Latency {
        p50_ms: ms(merged.value_at_quantile(0.50)),
        p99_ms: ms(merged.value_at_quantile(0.99)),
        p999_ms: ms(merged.value_at_quantile(0.999)),
        max_ms: ms(merged.max()),
        samples: merged.len(),
        send_lag_p99_ms: ms(send_lag.value_at_quantile(0.99)),
        send_lag_max_ms: ms(send_lag.max()),
    };
    let total_sent: u64 = sent.iter().sum();
    let per_msg = total_sent.max(1) as f64;
    let delivered = counts.delivered.max(1) as f64;
    let hub_cpu = cpu_after.hub.saturating_sub(cpu_before.hub) as f64;
    let redis_cpu = cpu_after.redis.saturating_sub(cpu_before.redis) as f64;
    let tool_cpu = cpu_after.tool.saturating_sub(cpu_before.tool) as f64;
    let backend_cpu = cpu_after.backend.saturating_sub(cpu_before.backend) as f64;
    let machine_busy = cpu_after
        .machine
        .busy_us
        .saturating_sub(cpu_before.machine.busy_us) as f64;
    let other_cpu = (machine_busy - hub_cpu - redis_cpu - tool_cpu - backend_cpu).max(0.0);
    let steal_cpu = cpu_after
        .machine
        .steal_us
        .saturating_sub(cpu_before.machine.steal_us) as f64;
    let pct = |us: f64| 100.0 * us / 1e6 / wall;
    // Utilization while messages were being sent (the drain that follows is mostly idle).
    let send_pct = |after: u64, before: u64| {
        100.0 * after.saturating_sub(before) as f64 / 1e6 / send_wall.max(1e-3)
    };
    let sustainable = counts.lost == 0
        && counts.duplicated == 0
        && counts.invalid == 0
        && disconnects == 0
        && latency.samples > 0
        && latency.p99_ms <= SUSTAINABLE_P99_MS;
    let delivered_per_s = in_window as f64 / cfg.duration.as_secs_f64();
    let saturated = counts.lost > 0 || disconnects > 0 || delivered_per_s < 0.95 * cfg.rate;
    Ok(LoadResult {
        kind: "load",
        target: cfg.target.clone(),
        protocol: cfg.proto,
        hubs: cfg.connect.urls.len(),
        deflate: cfg.connect.deflate,
        payload_style: cfg.payload_style,
        subscribers: cfg.subscribers,
        subscriber_transport: cfg.subscriber_transport,
        publishers: cfg.publishers,
        offered_deliveries_per_s: cfg.rate,
        offered_msgs_per_s: msgs_per_s,
        duration_s: cfg.duration.as_secs_f64(),
        sent: total_sent,
        expected_deliveries: total_sent * cfg.subscribers as u64,
        counts,
        delivered_per_s,
        disconnects,
        disconnect_reasons,
        error_frames,
        publisher_error_frames,
        publishers_outside: cfg.publishers_outside,
        wire_bytes_per_delivery: wire_bytes as f64 / delivered,
        latency,
        connect_per_s,
        hub_cpu_us_per_delivery: hub_cpu / delivered,
        redis_cpu_us_per_delivery: redis_cpu / delivered,
        hub_cpu_us_per_msg: hub_cpu / per_msg,
        redis_cpu_us_per_msg: redis_cpu / per_msg,
        redis_commands,
        window_s: wall,
        hub_cpu_pct: send_pct(cpu_sent.hub, cpu_before.hub),
        redis_cpu_pct: send_pct(cpu_sent.redis, cpu_before.redis),
        tool_cpu_pct: send_pct(cpu_sent.tool, cpu_before.tool),
        backend_cpu_pct: send_pct(cpu_sent.backend, cpu_before.backend),
        backend_cpu_us_per_msg: backend_cpu / per_msg,
        other_cpu_pct: pct(other_cpu),
        steal_cpu_pct: pct(steal_cpu),
        disturbed: pct(other_cpu) > DISTURBED_PCT || pct(steal_cpu) > DISTURBED_PCT,
        tool_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        sustainable,
        saturated,
    })
}

/// Open `count` connections joined to the room, spread round-robin over the hubs (offset so publishers
/// split evenly too), with bounded concurrency so the accept queues are not flooded.
async fn connect_many(
    cfg: &LoadConfig,
    count: usize,
    offset: usize,
) -> Result<Vec<Ws>, BenchError> {
    open_many(cfg.proto, &cfg.connect, Some(&cfg.room), count, offset)
        .await
        .into_iter()
        .collect()
}

async fn subscriber(
    mut ws: Ws,
    proto: Protocol,
    index: usize,
    tracker: Tracker,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> SubscriberOutcome {
    let mut tally = Tally::new(index, tracker);
    let (mut error_frames, mut disconnected) = (0u64, None);
    let mut wire_before = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tokio::time::sleep_until(shared.window_start), if wire_before.is_none() => {
                wire_before = Some(ws.get_ref().bytes_read());
            }
            msg = ws.next() => {
                let delivery = |t: &str| tally.delivery(t, &shared);
                if let Err(reason) = member_frame(&mut ws, proto, msg, &mut error_frames, delivery).await {
                    disconnected = Some(reason);
                    break;
                }
            }
        }
    }
    let wire_bytes = wire_before.map_or(0, |before| ws.get_ref().bytes_read() - before);
    tally.finish(&shared, disconnected, error_frames, wire_bytes)
}

/// One frame read by a room member: `delivery` sees every text frame first and says whether it was
/// one; any other is answered when the protocol asks (Engine.IO heartbeats) or counted when it is an
/// error. `Err` is why the connection ended.
async fn member_frame(
    ws: &mut Ws,
    proto: Protocol,
    msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    error_frames: &mut u64,
    mut delivery: impl FnMut(&str) -> bool,
) -> Result<(), String> {
    match msg {
        Some(Ok(Message::Text(t))) => {
            let t = t.as_str();
            if delivery(t) {
                return Ok(());
            }
            if let Some(reply) = proto.reply_to(t) {
                ws.send(Message::text(reply))
                    .await
                    .map_err(|e| format!("send failed: {e}"))?;
            } else if proto.is_error(t) {
                *error_frames += 1;
            }
            Ok(())
        }
        end @ (Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => Err(end_reason(end)),
        Some(Ok(_)) => Ok(()),
    }
}

struct PublishJob {
    proto: Protocol,
    room: String,
    id: u32,
    first_ns: u64,
    interval_ns: u64,
    end_ns: u64,
    payload_bytes: usize,
    payload_style: PayloadStyle,
}

/// Latencies in µs, 1 µs to 10 min, 3 significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static bounds are valid")
}

/// Open loop: message `seq` is due at `first + seq × interval` whatever happened before, and carries
/// that due time, so a stalled hub shows up as latency instead of as fewer, later sends.
async fn publisher(
    mut ws: Ws,
    job: PublishJob,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
) -> PublisherOutcome {
    let due = |seq: u64| job.first_ns + seq * job.interval_ns;
    let (mut seq, mut error_frames, mut disconnected) = (0u64, 0u64, None);
    let mut send_lag = latency_histogram();
    loop {
        let sending = due(seq) < job.end_ns;
        let wake = TokioInstant::from_std(epoch + Duration::from_nanos(due(seq)));
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tokio::time::sleep_until(wake), if sending => {
                // Send everything that is due now (timer granularity is ~1 ms), then flush once.
                let now = epoch.elapsed().as_nanos() as u64;
                let first_seq = seq;
                let mut result = Ok(());
                while due(seq) <= now && due(seq) < job.end_ns && result.is_ok() {
                    let stamp = Stamp { publisher: job.id, seq, send_ns: due(seq) };
                    let content = filler::content(stamp, job.payload_bytes, job.payload_style);
                    result = ws.feed(Message::text(job.proto.message_frame(&job.room, &content))).await;
                    seq += 1;
                }
                if let Err(e) = result.and(ws.flush().await) {
                    disconnected = Some(format!("send failed: {e}"));
                    break;
                }
                let flushed = epoch.elapsed().as_nanos() as u64;
                for s in first_seq..seq {
                    send_lag.saturating_record((flushed.saturating_sub(due(s)) / 1000).max(1));
                }
            }
            // Publishers in the room read what the others publish (until the drain ends) so the
            // hub never sees a slow consumer here; every publisher answers heartbeats and counts
            // error frames.
            msg = ws.next() => {
                if let Err(reason) = member_frame(&mut ws, job.proto, msg, &mut error_frames, |_| false).await {
                    disconnected = Some(reason);
                    break;
                }
            }
        }
    }
    PublisherOutcome {
        sent: seq,
        disconnected,
        error_frames,
        send_lag,
    }
}

/// Why a connection ended: the close code and reason the server sent, or what went wrong.
fn end_reason(end: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> String {
    match end {
        Some(Ok(Message::Close(Some(frame)))) => {
            format!("closed {} {}", u16::from(frame.code), frame.reason)
        }
        Some(Ok(Message::Close(None))) => "closed without a code".into(),
        Some(Ok(_)) => "unexpected frame".into(),
        Some(Err(e)) => format!("error: {e}"),
        None => "ended without a close frame".into(),
    }
}

async fn redis_snapshot(cfg: &LoadConfig) -> Result<Option<redisstat::Snapshot>, BenchError> {
    match &cfg.redis_addr {
        Some(addr) => redisstat::snapshot(addr).await.map(Some),
        None => Ok(None),
    }
}

/// CPU time (µs) of the hub processes, the Redis processes, this tool, the backend processes and
/// the whole machine at one moment.
struct CpuSnapshot {
    hub: u64,
    redis: u64,
    tool: u64,
    backend: u64,
    machine: procstat::MachineCpu,
}

impl CpuSnapshot {
    fn take(cfg: &LoadConfig) -> Result<Self, BenchError> {
        Ok(CpuSnapshot {
            hub: procstat::cpu_us_sum(&cfg.hub_pids)?,
            redis: procstat::cpu_us_sum(&cfg.redis_pids)?,
            tool: procstat::cpu_us(std::process::id())?,
            backend: procstat::cpu_us_sum(&cfg.backend_pids)?,
            machine: procstat::machine_cpu()?,
        })
    }
}
