//! Rooms mode: what a join and a leave cost as the rooms one hub holds grow (issue 14, item 3).
//! Clients join N distinct rooms block by block (1k, 10k, 50k, 100k rooms held), each client with
//! a few joins in flight, and each block is timed: wall µs per join, the latency of each join
//! (sent → `joined`), and the hub's and Redis's CPU per join from /proc. Then the rooms are held —
//! for a duration or until a file appears, while something else (a Redis restart) happens; every
//! chat message a client gets meanwhile is logged with its arrival time — and left block by block,
//! timed the same way.
//!
//! A session runs its frames one at a time (a join waits for its subscription), so the hub sees
//! as many joins at once as there are clients: their count sets the concurrency, not the window.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{ConnectOpts, Protocol, Ws, open_many};
use crate::error::BenchError;
use crate::procstat;

/// `hub-bench rooms`: join and leave cost by rooms held.
#[derive(Debug, Clone, clap::Args)]
pub struct RoomsConfig {
    /// Label in the results.
    #[arg(long)]
    pub target: String,
    #[command(flatten)]
    pub connect: ConnectOpts,
    #[arg(long, default_value_t = 100_000)]
    pub rooms: usize,
    /// Rooms one client joins at most (the hub's `max_rooms_per_client` less `general`); the
    /// number of clients follows unless `clients` is given.
    #[arg(long, default_value_t = 99)]
    pub per_client: usize,
    #[arg(long)]
    pub clients: Option<usize>,
    /// Rooms held at the end of each timed block of joins (leaves go back down through them).
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 10_000, 50_000, 100_000])]
    pub marks: Vec<usize>,
    /// Joins (or leaves) one client has sent and not yet seen answered.
    #[arg(long, default_value_t = 4)]
    pub window: usize,
    /// Room `i` is `<prefix><i>`.
    #[arg(long, default_value = "rb-")]
    pub prefix: String,
    /// Longest a block may take: past it the run fails (a join never answered is a hub bug).
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    pub block_timeout: Duration,
    /// Pause after each block before CPU and RSS are read: work the block set off (presence writes
    /// to Redis, pipelined) counts for it.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// The same after a block of leaves: the hub announces a user's last leave of a room only
    /// after `presence_leave_delay` (5 s by default), and that work belongs to the block.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    pub leave_settle: Duration,
    /// Hold the rooms this long between the joins and the leaves.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    /// Hold the rooms until this file exists (instead of `--hold`), at most `--hold-max`.
    #[arg(long, value_name = "FILE", conflicts_with = "hold")]
    pub hold_until: Option<PathBuf>,
    #[arg(long, default_value = "600s", value_parser = humantime::parse_duration, requires = "hold_until")]
    pub hold_max: Duration,
    /// Stay in `general`, where every client starts. Off: each client leaves it once connected,
    /// so the rooms measured are the only ones (a room of ~1000 users gets the hub's presence
    /// resync after a Redis restart as ~1000 `presence_diff` frames per member at once).
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, default_value_t = false)]
    pub keep_general: bool,
    /// Created once every room is joined and held.
    #[arg(long, value_name = "FILE")]
    pub ready: Option<PathBuf>,
    /// Every chat message received while holding: `<unix µs> <room> <message id>` per line.
    #[arg(long, value_name = "FILE")]
    pub probe_log: Option<PathBuf>,
    /// Hub processes whose CPU and RSS are measured (repeat or separate with commas).
    #[arg(long = "hub-pid", value_name = "PID", value_delimiter = ',')]
    pub hub_pids: Vec<u32>,
    /// Redis processes whose CPU is measured.
    #[arg(long = "redis-pid", value_name = "PID", value_delimiter = ',')]
    pub redis_pids: Vec<u32>,
    /// Read again before each reading, for a Redis that is restarted mid-run: its pid changes.
    #[arg(long, value_name = "FILE")]
    pub redis_pid_file: Option<PathBuf>,
}

impl RoomsConfig {
    pub fn hold(&self) -> Hold {
        match &self.hold_until {
            Some(file) => Hold::Until {
                file: file.clone(),
                max: self.hold_max,
            },
            None => Hold::For(self.hold),
        }
    }
}

/// How long the rooms are held between the joins and the leaves.
#[derive(Debug, Clone)]
pub enum Hold {
    For(Duration),
    /// Until `file` exists, at most `max`.
    Until {
        file: PathBuf,
        max: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Join,
    Leave,
}

impl Op {
    fn frame(self, room: &str) -> String {
        let kind = match self {
            Op::Join => "join",
            Op::Leave => "leave",
        };
        serde_json::json!({"type": kind, "room": room}).to_string()
    }

    fn answer(self) -> &'static str {
        match self {
            Op::Join => "joined",
            Op::Leave => "left",
        }
    }
}

/// One timed block of joins or leaves.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BlockResult {
    pub kind: &'static str,
    pub target: String,
    pub op: Op,
    pub clients: usize,
    pub rooms_before: usize,
    pub rooms_after: usize,
    pub ops: usize,
    /// Answered with `error` (rate limit, too many rooms, …) or answered for another room.
    pub errors: u64,
    pub first_error: Option<String>,
    pub wall_s: f64,
    /// Wall time of the block per operation: the inverse of the throughput at this concurrency.
    pub us_per_op: f64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
    /// The hub's CPU (all threads) over the block and its settle, per operation.
    pub hub_cpu_us_per_op: f64,
    pub redis_cpu_us_per_op: f64,
    /// This tool's own CPU per operation: it shares the machine with the hub.
    pub tool_cpu_us_per_op: f64,
    /// Every other process on the machine during the block, % of one core: a block that shared
    /// the CPUs with others says so here.
    pub other_cpu_pct: f64,
    pub hub_rss_kib: u64,
}

/// The whole run: memory per room and what happened while the rooms were held.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoomsSummary {
    pub kind: &'static str,
    pub target: String,
    pub rooms: usize,
    pub clients: usize,
    /// Hub RSS with the clients connected and no room of ours joined, with all held, after leaving.
    pub rss_connected_kib: u64,
    pub rss_held_kib: u64,
    pub rss_left_kib: u64,
    pub rss_per_room_bytes: f64,
    pub held_s: f64,
    /// Clients the hub closed while the rooms were held (each one fails the run).
    pub closed_while_held: usize,
    pub messages_while_held: u64,
}

/// What one client got in one block.
#[derive(Debug, Default)]
struct Exchange {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    /// The connection ended (why), or the block's deadline passed with answers missing.
    failed: Option<String>,
}

#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: Option<String>,
    room: Option<String>,
    id: Option<String>,
}

/// Room `i` of the run goes to client `i % clients`; this is client `c`'s share of `range`.
fn share(prefix: &str, range: std::ops::Range<usize>, clients: usize, c: usize) -> Vec<String> {
    let first = range.start + (c + clients - range.start % clients) % clients;
    (first..range.end)
        .step_by(clients)
        .map(|i| format!("{prefix}{i}"))
        .collect()
}

/// The marks below `rooms`, then `rooms`: the rooms held after each block of joins.
pub fn marks_up_to(marks: &[usize], rooms: usize) -> Vec<usize> {
    let mut out: Vec<usize> = marks
        .iter()
        .copied()
        .filter(|&m| m > 0 && m < rooms)
        .collect();
    out.sort_unstable();
    out.dedup();
    out.push(rooms);
    out
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// Sends `rooms.len()` joins or leaves on one connection, at most `window` unanswered, and times
/// each until its answer. A session answers its frames in order, so an answer (or an `error`,
/// which for a leave names no room) belongs to the oldest unanswered one.
async fn exchange(
    mut ws: Ws,
    op: Op,
    rooms: Vec<String>,
    window: usize,
    deadline: tokio::time::Instant,
) -> (Ws, Exchange) {
    let mut out = Exchange {
        latencies_us: Vec::with_capacity(rooms.len()),
        ..Exchange::default()
    };
    let mut waiting: VecDeque<(usize, Instant)> = VecDeque::with_capacity(window);
    let mut next = 0;
    while next < rooms.len() || !waiting.is_empty() {
        if next < rooms.len() && waiting.len() < window {
            while next < rooms.len() && waiting.len() < window {
                if let Err(e) = ws.feed(Message::text(op.frame(&rooms[next]))).await {
                    out.failed = Some(format!("send failed: {e}"));
                    return (ws, out);
                }
                waiting.push_back((next, Instant::now()));
                next += 1;
            }
            if let Err(e) = ws.flush().await {
                out.failed = Some(format!("send failed: {e}"));
                return (ws, out);
            }
        }
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(msg) => msg,
            Err(_) => {
                out.failed = Some(format!(
                    "{} of {} answers missing at the block's deadline",
                    rooms.len() - out.latencies_us.len() - out.errors as usize,
                    rooms.len()
                ));
                return (ws, out);
            }
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(frame))) => {
                out.failed = Some(format!("closed by the hub: {frame:?}"));
                return (ws, out);
            }
            Some(Err(e)) => {
                out.failed = Some(format!("connection lost: {e}"));
                return (ws, out);
            }
            None => {
                out.failed = Some("connection ended".into());
                return (ws, out);
            }
            Some(Ok(_)) => continue,
        };
        let Ok(head) = serde_json::from_str::<Head>(text.as_str()) else {
            continue;
        };
        let kind = head.kind.as_deref().unwrap_or_default();
        if kind != op.answer() && kind != "error" {
            continue; // presence_diff, a message: not an answer
        }
        let Some((i, sent)) = waiting.pop_front() else {
            continue;
        };
        let wrong_room = kind == op.answer() && head.room.as_deref() != Some(&rooms[i]);
        if kind == "error" || wrong_room {
            out.errors += 1;
            if out.first_error.is_none() {
                out.first_error = Some(text.chars().take(200).collect());
            }
        } else {
            out.latencies_us.push(sent.elapsed().as_micros() as u64);
        }
    }
    (ws, out)
}

/// CPU and RSS readings around a block.
struct Meter<'a> {
    cfg: &'a RoomsConfig,
}

#[derive(Clone, Copy)]
struct Reading {
    hub_cpu_us: u64,
    redis_cpu_us: u64,
    tool_cpu_us: u64,
    machine_busy_us: u64,
    at: Instant,
}

impl Meter<'_> {
    fn read(&self) -> Result<Reading, BenchError> {
        let mut redis = self.cfg.redis_pids.clone();
        if let Some(file) = &self.cfg.redis_pid_file {
            let text = std::fs::read_to_string(file)?;
            let pid = text.trim().parse().map_err(|_| {
                BenchError::Usage(format!("{}: {text:?} is not a pid", file.display()))
            })?;
            redis.push(pid);
        }
        Ok(Reading {
            hub_cpu_us: procstat::cpu_us_sum(&self.cfg.hub_pids)?,
            redis_cpu_us: procstat::cpu_us_sum(&redis)?,
            tool_cpu_us: procstat::cpu_us(std::process::id())?,
            machine_busy_us: procstat::machine_cpu()?.busy_us,
            at: Instant::now(),
        })
    }

    fn rss_kib(&self) -> Result<u64, BenchError> {
        procstat::rss_kib_sum(&self.cfg.hub_pids)
    }
}

/// Runs one block: every client does its share of `range` at once.
async fn block(
    cfg: &RoomsConfig,
    clients: Vec<Ws>,
    op: Op,
    range: std::ops::Range<usize>,
) -> Result<(Vec<Ws>, BlockResult), BenchError> {
    let meter = Meter { cfg };
    let n = clients.len();
    let ops = range.len();
    let before = meter.read()?;
    let deadline = tokio::time::Instant::now() + cfg.block_timeout;
    let mut tasks = JoinSet::new();
    for (c, ws) in clients.into_iter().enumerate() {
        let rooms = share(&cfg.prefix, range.clone(), n, c);
        let window = cfg.window.max(1);
        tasks.spawn(async move { (c, exchange(ws, op, rooms, window, deadline).await) });
    }
    let mut back: Vec<Option<Ws>> = (0..n).map(|_| None).collect();
    let (mut latencies, mut errors, mut first_error, mut failed) = (Vec::new(), 0, None, None);
    while let Some(done) = tasks.join_next().await {
        let (c, (ws, ex)) =
            done.map_err(|e| BenchError::Task(format!("client task failed: {e}")))?;
        back[c] = Some(ws);
        latencies.extend(ex.latencies_us);
        errors += ex.errors;
        first_error = first_error.or(ex.first_error);
        if failed.is_none() {
            failed = ex.failed.map(|why| format!("client {c}: {why}"));
        }
    }
    let wall = before.at.elapsed();
    if let Some(why) = failed {
        return Err(BenchError::Handshake {
            url: cfg.connect.urls.join(","),
            reason: format!("{op:?} block {range:?}: {why}"),
        });
    }
    tokio::time::sleep(match op {
        Op::Join => cfg.settle,
        Op::Leave => cfg.leave_settle,
    })
    .await;
    let after = meter.read()?;
    latencies.sort_unstable();
    let per_op = |us: u64| us as f64 / ops.max(1) as f64;
    let hub = after.hub_cpu_us.saturating_sub(before.hub_cpu_us);
    let redis = after.redis_cpu_us.saturating_sub(before.redis_cpu_us);
    let tool = after.tool_cpu_us.saturating_sub(before.tool_cpu_us);
    let busy = after.machine_busy_us.saturating_sub(before.machine_busy_us);
    let span_us = after.at.duration_since(before.at).as_micros().max(1) as f64;
    let (rooms_before, rooms_after) = match op {
        Op::Join => (range.start, range.end),
        Op::Leave => (range.end, range.start),
    };
    let result = BlockResult {
        kind: "rooms",
        target: cfg.target.clone(),
        op,
        clients: n,
        rooms_before,
        rooms_after,
        ops,
        errors,
        first_error,
        wall_s: wall.as_secs_f64(),
        us_per_op: wall.as_micros() as f64 / ops.max(1) as f64,
        latency_p50_us: percentile(&latencies, 0.50),
        latency_p99_us: percentile(&latencies, 0.99),
        latency_max_us: latencies.last().copied().unwrap_or(0),
        hub_cpu_us_per_op: per_op(hub),
        redis_cpu_us_per_op: per_op(redis),
        tool_cpu_us_per_op: per_op(tool),
        other_cpu_pct: 100.0 * busy.saturating_sub(hub + redis + tool) as f64 / span_us,
        hub_rss_kib: meter.rss_kib()?,
    };
    Ok((back.into_iter().flatten().collect(), result))
}

/// Reads every client while the rooms are held (pings get their pongs; chat messages are logged
/// with their arrival time), until the hold ends. Returns the clients still open and how many
/// messages arrived.
async fn hold(cfg: &RoomsConfig, clients: Vec<Ws>) -> Result<(Vec<Ws>, usize, u64), BenchError> {
    let log = match &cfg.probe_log {
        Some(path) => Some(Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ))),
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let n = clients.len();
    for (c, ws) in clients.into_iter().enumerate() {
        let (stop, log) = (stop_rx.clone(), log.clone());
        tasks.spawn(async move { (c, read_while_held(ws, stop, log).await) });
    }
    if let Some(ready) = &cfg.ready {
        std::fs::write(ready, format!("{}\n", cfg.rooms))?;
    }
    match cfg.hold() {
        Hold::For(d) => tokio::time::sleep(d).await,
        Hold::Until { file, max } => {
            let end = tokio::time::Instant::now() + max;
            while !file.exists() && tokio::time::Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    stop_tx.send_replace(true);
    // Back in their order: client `c` holds the rooms `i % n == c`, and leaves them.
    let mut open: Vec<Option<Ws>> = (0..n).map(|_| None).collect();
    let (mut closed, mut messages) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (c, (ws, got)) =
            done.map_err(|e| BenchError::Task(format!("reader task failed: {e}")))?;
        messages += got;
        match ws {
            Some(ws) => open[c] = Some(ws),
            None => closed += 1,
        }
    }
    Ok((open.into_iter().flatten().collect(), closed, messages))
}

type ProbeLog = Option<Arc<Mutex<std::fs::File>>>;

async fn read_while_held(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    log: ProbeLog,
) -> (Option<Ws>, u64) {
    let mut messages = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => return (Some(ws), messages),
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let Ok(head) = serde_json::from_str::<Head>(t.as_str()) else { continue };
                    if head.kind.as_deref() != Some("message") {
                        continue;
                    }
                    messages += 1;
                    if let Some(log) = &log {
                        let line = format!(
                            "{} {} {}\n",
                            unix_us(),
                            head.room.as_deref().unwrap_or("-"),
                            head.id.as_deref().unwrap_or("-")
                        );
                        // One short write per message, a few per second: the lock is brief.
                        let mut file = log.lock().unwrap_or_else(|p| p.into_inner());
                        let _ = file.write_all(line.as_bytes());
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return (None, messages),
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Every client leaves `general` (its answers are not timed).
async fn leave_general(cfg: &RoomsConfig, clients: Vec<Ws>) -> Result<Vec<Ws>, BenchError> {
    let deadline = tokio::time::Instant::now() + cfg.block_timeout;
    let mut tasks = JoinSet::new();
    let n = clients.len();
    for (c, ws) in clients.into_iter().enumerate() {
        let rooms = vec!["general".to_owned()];
        tasks.spawn(async move { (c, exchange(ws, Op::Leave, rooms, 1, deadline).await) });
    }
    let mut back: Vec<Option<Ws>> = (0..n).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        let (c, (ws, ex)) =
            done.map_err(|e| BenchError::Task(format!("client task failed: {e}")))?;
        if let Some(why) = ex.failed.or(ex.first_error) {
            return Err(BenchError::Handshake {
                url: cfg.connect.urls.join(","),
                reason: format!("client {c} leaving general: {why}"),
            });
        }
        back[c] = Some(ws);
    }
    Ok(back.into_iter().flatten().collect())
}

/// The whole run; `emit` gets each block's result as it finishes, then the summary.
pub async fn run(
    cfg: &RoomsConfig,
    mut emit: impl FnMut(&BlockResult) -> std::io::Result<()>,
) -> Result<RoomsSummary, BenchError> {
    if cfg.connect.urls.is_empty() || cfg.rooms == 0 || cfg.per_client == 0 {
        return Err(BenchError::Usage(
            "need urls, rooms and rooms per client".into(),
        ));
    }
    let clients_n = cfg
        .clients
        .unwrap_or_else(|| cfg.rooms.div_ceil(cfg.per_client));
    if clients_n == 0 || cfg.rooms.div_ceil(clients_n) > cfg.per_client {
        return Err(BenchError::Usage(format!(
            "{} rooms over {clients_n} clients is more than {} rooms per client",
            cfg.rooms, cfg.per_client
        )));
    }
    let meter = Meter { cfg };
    let results = open_many(Protocol::Hub, &cfg.connect, None, clients_n, 0).await;
    let mut clients = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    if !cfg.keep_general {
        clients = leave_general(cfg, clients).await?;
    }
    // Connecting makes presence work (every client is a user in `general`): let it pass.
    tokio::time::sleep(cfg.settle.max(Duration::from_secs(1))).await;
    let rss_connected = meter.rss_kib()?;

    let marks = marks_up_to(&cfg.marks, cfg.rooms);
    let mut held = 0;
    for &mark in &marks {
        let (back, r) = block(cfg, clients, Op::Join, held..mark).await?;
        clients = back;
        held = mark;
        emit(&r)?;
    }
    let rss_held = meter.rss_kib()?;

    let hold_start = Instant::now();
    let (back, closed, messages) = hold(cfg, clients).await?;
    let held_s = hold_start.elapsed().as_secs_f64();
    if closed > 0 {
        return Err(BenchError::Handshake {
            url: cfg.connect.urls.join(","),
            reason: format!("{closed} of {clients_n} clients closed while the rooms were held"),
        });
    }
    clients = back;

    for &mark in marks.iter().rev().skip(1).chain([&0]) {
        let (back, r) = block(cfg, clients, Op::Leave, mark..held).await?;
        clients = back;
        held = mark;
        emit(&r)?;
    }
    let rss_left = meter.rss_kib()?;
    drop(clients);
    Ok(RoomsSummary {
        kind: "rooms-summary",
        target: cfg.target.clone(),
        rooms: cfg.rooms,
        clients: clients_n,
        rss_connected_kib: rss_connected,
        rss_held_kib: rss_held,
        rss_left_kib: rss_left,
        rss_per_room_bytes: rss_held.saturating_sub(rss_connected) as f64 * 1024.0
            / cfg.rooms as f64,
        held_s,
        closed_while_held: closed,
        messages_while_held: messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_room_goes_to_exactly_one_client() {
        let clients = 7;
        let mut all: Vec<String> = Vec::new();
        for range in [0..3, 3..40, 40..101] {
            for c in 0..clients {
                let mine = share("r", range.clone(), clients, c);
                for room in &mine {
                    let i: usize = room[1..].parse().unwrap();
                    assert_eq!(i % clients, c, "{room} given to client {c}");
                    assert!(range.contains(&i));
                }
                all.extend(mine);
            }
        }
        all.sort_by_key(|r| r[1..].parse::<usize>().unwrap());
        let want: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
        assert_eq!(all, want);
    }

    #[test]
    fn marks_end_at_the_room_count() {
        let marks = [1000, 10_000, 50_000, 100_000];
        assert_eq!(
            marks_up_to(&marks, 100_000),
            [1000, 10_000, 50_000, 100_000]
        );
        assert_eq!(marks_up_to(&marks, 20_000), [1000, 10_000, 20_000]);
        assert_eq!(marks_up_to(&[10, 0, 10, 5], 7), [5, 7]);
    }

    #[test]
    fn percentiles_of_sorted_samples() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.99), 7);
    }

    #[test]
    fn frames_and_answers() {
        let join: serde_json::Value = serde_json::from_str(&Op::Join.frame("r-1")).unwrap();
        assert_eq!(join, serde_json::json!({"type": "join", "room": "r-1"}));
        let leave: serde_json::Value = serde_json::from_str(&Op::Leave.frame("r-1")).unwrap();
        assert_eq!(leave["type"], "leave");
        assert_eq!(Op::Join.answer(), "joined");
        assert_eq!(Op::Leave.answer(), "left");
    }

    /// A fake hub answers in order, with a presence_diff and an error in between: latencies for
    /// the answered ones, the error counted, nothing left waiting.
    #[tokio::test]
    async fn exchange_matches_answers_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let mut n = 0;
            while let Some(Ok(Message::Text(t))) = ws.next().await {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                let room = v["room"].as_str().unwrap().to_owned();
                let diff = serde_json::json!({"type": "presence_diff", "room": room});
                ws.send(Message::text(diff.to_string())).await.unwrap();
                let answer = if n == 1 {
                    serde_json::json!({"type": "error", "code": "too_many_rooms", "room": room})
                } else {
                    serde_json::json!({"type": "joined", "room": room})
                };
                ws.send(Message::text(answer.to_string())).await.unwrap();
                n += 1;
            }
            n
        });
        let (ws, _) = crate::wire::connect(&url, Default::default(), None)
            .await
            .unwrap();
        let rooms: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let (ws, ex) = exchange(ws, Op::Join, rooms, 2, deadline).await;
        assert!(ex.failed.is_none(), "{:?}", ex.failed);
        assert_eq!(ex.latencies_us.len(), 4);
        assert_eq!(ex.errors, 1);
        assert!(ex.first_error.unwrap().contains("too_many_rooms"));
        drop(ws);
        assert_eq!(server.await.unwrap(), 5);
    }
}
