//! `hub-bench c250k`: starts the workers, drives the phases and counts. Phases: connect everyone
//! (both rooms joined); settle and read memory; a `POST /api/broadcast` and a `POST /api/publish`
//! to the common room, each timed until the last connection has it; personal messages through
//! `POST /api/publish` at a fixed rate, open loop, with one hub `kill -9`ed meanwhile and a message
//! to the common room right after (its clients must recover it); a drain; then every worker counts
//! what each connection got against what was sent.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::api::{ApiConn, ApiError};
use super::control::{Command, Sent, Status, WorkerReport};
use super::frames::{Kind, Stamp, unix_us};
use super::options::{ClientOpts, PersonalScheme, Rooms};
use super::outcome::{Outcome, PhaseCpu};
use super::schedule::Personal;
use crate::procstat;

/// `hub-bench c250k`: see the module documentation and bench/c250k.sh.
#[derive(Debug, Clone, clap::Args)]
pub struct C250kConfig {
    /// The hubs' WebSocket URLs (`ws://IP:port/ws`).
    #[arg(long = "url", value_delimiter = ',', required = true)]
    pub urls: Vec<String>,
    /// Each hub's server API (`IP:port`), in the same order.
    #[arg(long = "api", value_delimiter = ',', required = true)]
    pub apis: Vec<String>,
    /// Each hub's pid, in the same order (CPU, RSS, and the one killed).
    #[arg(long = "hub-pid", value_delimiter = ',', required = true)]
    pub hub_pids: Vec<u32>,
    #[arg(long)]
    pub redis_pid: u32,
    #[arg(long, default_value_t = 250_000)]
    pub connections: u64,
    /// Connections per worker process (each holds one descriptor per connection).
    #[arg(long, default_value_t = 19_000)]
    pub per_worker: u64,
    #[command(flatten)]
    pub rooms: Rooms,
    #[command(flatten)]
    pub client: ClientOpts,
    /// Longest the connect phase may take.
    #[arg(long, default_value = "900s", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,
    /// Pause after everyone connected, before memory is read.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Longest a broadcast, the common-room message or the drain may take to arrive everywhere.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub phase_timeout: Duration,
    /// Personal messages per second, through the API.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// How long personal messages are sent.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// API connections the personal messages are spread over (one request in flight on each).
    #[arg(long, default_value_t = 256)]
    pub api_connections: usize,
    /// Most personal messages in one request: above 1, a connection sends every message already
    /// due in one `POST /api/publish/batch` (as a backend with many to send would); 1 sends each
    /// with `POST /api/publish`.
    #[arg(long, default_value_t = 1)]
    pub api_batch: usize,
    /// Index of the hub to `kill -9` while personal messages flow (none: no kill).
    #[arg(long)]
    pub kill_hub: Option<usize>,
    /// When, after the personal messages start.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub kill_after: Duration,
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// A key the hubs' API accepts (from the environment: never on a command line).
    #[arg(long, env = "C250K_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// The HS256 secret the hubs verify, for the workers' tokens.
    #[arg(long, env = "C250K_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
}

const POLL: Duration = Duration::from_millis(200);

/// Runs it, writes the figures; returns what fails the run (nothing when it passed).
pub fn main(cfg: C250kConfig) -> Result<Vec<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("runtime")?;
    let local = tokio::task::LocalSet::new();
    let outcome = local.block_on(&rt, run(&cfg))?;
    let md = outcome.markdown();
    print!("{md}");
    if let Some(path) = &cfg.json {
        std::fs::write(path, serde_json::to_string_pretty(&outcome)? + "\n")
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &cfg.markdown {
        std::fs::write(path, &md).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(outcome.problems())
}

async fn run(cfg: &C250kConfig) -> Result<Outcome> {
    let hubs = cfg.urls.len();
    if hubs == 0 || cfg.apis.len() != hubs || cfg.hub_pids.len() != hubs {
        bail!("--url, --api and --hub-pid must list the same hubs");
    }
    if cfg.kill_hub.is_some_and(|k| k >= hubs || hubs < 2) {
        bail!("--kill-hub: a hub index below {hubs}, and at least two hubs");
    }
    let mut m = Meter::new(cfg);
    let mut o = Outcome {
        kind: "c250k".into(),
        connections: cfg.connections,
        hubs,
        personal_scheme: match cfg.rooms.personal {
            PersonalScheme::Join => format!("a room each ({}N)", cfg.rooms.personal_prefix),
            PersonalScheme::User => "user:<id>, joined by the hub".into(),
        },
        personal_rate: cfg.rate,
        killed_hub: cfg.kill_hub,
        ..Outcome::default()
    };
    o.hub_rss_before_mib = m.hub_rss_mib();

    say(&format!("connecting {} clients", cfg.connections));
    let mut workers = Workers::start(cfg).await?;
    o.workers = workers.list.len();
    m.worker_pids = workers.list.iter().map(|w| w.pid).collect();
    let start_us = unix_us();
    let deadline = Instant::now() + cfg.ready_timeout;
    let mut last_say = Instant::now();
    let connected = loop {
        let s = workers.status().await?;
        m.sample();
        if s.ever_ready == cfg.connections && s.ready == cfg.connections {
            break Some(s);
        }
        if last_say.elapsed() > Duration::from_secs(5) {
            say(&format!(
                "  {} of {} in both rooms, {} failed attempts",
                s.ready, cfg.connections, s.connect_failures
            ));
            last_say = Instant::now();
        }
        if Instant::now() > deadline {
            say(&format!(
                "  only {} of {} connected in time",
                s.ready, cfg.connections
            ));
            break None;
        }
        tokio::time::sleep(POLL).await;
    };
    m.phase("connect");
    let Some(connected) = connected else {
        return workers.finish(o, &m, &Sent::default()).await;
    };
    o.connect_s = Some(secs(connected.last_ready_us.saturating_sub(start_us)));
    o.connect_failures = connected.connect_failures;
    say(&format!(
        "  all connected in {:.1} s; settling {:?}",
        o.connect_s.unwrap_or_default(),
        cfg.settle
    ));

    tokio::time::sleep(cfg.settle).await;
    o.hub_rss_mib = m.hub_rss_mib();
    o.hub_rss_per_connection_kib = o
        .hub_rss_mib
        .zip(o.hub_rss_before_mib)
        .map(|(after, before)| (after - before) * 1024.0 / cfg.connections as f64);
    o.redis_rss_mib = procstat::rss_kib(cfg.redis_pid).ok().map(kib_to_mib);
    let generator_kib = workers.rss_kib();
    o.generator_rss_mib = generator_kib.map(kib_to_mib);
    o.generator_rss_per_connection_bytes = generator_kib.map(|kib| {
        kib.saturating_sub(connected.rss_start_kib) as f64 * 1024.0 / cfg.connections as f64
    });
    m.phase("settle");

    let key: Rc<str> = Rc::from(cfg.api_key.as_str());
    // Never the hub about to be killed: its API goes with it.
    let api_hubs: Vec<usize> = (0..hubs).filter(|&h| Some(h) != cfg.kill_hub).collect();
    let mut api = ApiConn::new(&cfg.apis[api_hubs[0]], key.clone());
    let mut sent = Sent::default();
    // Each connection must be in its two rooms only: nobody in the default room.
    o.general_members = general_members(&mut api).await;

    say("broadcast to everyone (POST /api/broadcast)");
    let t = unix_us();
    let content = Stamp {
        kind: Kind::Broadcast,
        number: 0,
        due_us: t,
    }
    .content();
    expect_ok(
        &mut api,
        "/api/broadcast",
        &format!(r#"{{"content":"{content}"}}"#),
    )
    .await?;
    sent.broadcasts = 1;
    let s = workers
        .wait(&mut m, cfg.phase_timeout, |s| {
            s.broadcasts >= cfg.connections
        })
        .await?;
    o.broadcast_ms = s.map(|s| millis(s.broadcast_last_us.saturating_sub(t)));

    say("a message to the common room (POST /api/publish)");
    let t = unix_us();
    publish_all(&mut api, &cfg.rooms.all_room, 0).await?;
    sent.all = 1;
    let s = workers
        .wait(&mut m, cfg.phase_timeout, |s| s.all_msgs >= cfg.connections)
        .await?;
    o.all_publish_ms = s.map(|s| millis(s.all_last_us.saturating_sub(t)));
    m.phase("broadcast + common room");

    say(&format!(
        "personal messages: {}/s for {:?}{}",
        cfg.rate,
        cfg.duration,
        cfg.kill_hub
            .map(|h| format!(", hub {h} killed after {:?}", cfg.kill_after))
            .unwrap_or_default()
    ));
    let total = (cfg.rate * cfg.duration.as_secs_f64()) as u64;
    let publish = Rc::new(Publishing::new(
        total,
        cfg.rate,
        Personal::new(cfg.connections),
    ));
    let mut tasks = Vec::new();
    for i in 0..cfg.api_connections.max(1) {
        let conn = ApiConn::new(&cfg.apis[api_hubs[i % api_hubs.len()]], key.clone());
        tasks.push(tokio::task::spawn_local(publisher(
            publish.clone(),
            conn,
            cfg.rooms.clone(),
            cfg.api_batch.max(1),
        )));
    }
    let phase_start = Instant::now();
    let mut kill_us = None;
    let mut storm_end: Option<Status> = None;
    let mut drain_deadline = None;
    loop {
        if let (Some(h), None) = (cfg.kill_hub, kill_us)
            && phase_start.elapsed() >= cfg.kill_after
        {
            say(&format!("  kill -9 hub {h} (pid {})", cfg.hub_pids[h]));
            m.sample();
            kill_us = Some(unix_us());
            kill(cfg.hub_pids[h]).await?;
            // Published while the killed hub's clients are away: they must recover it.
            publish_all(&mut api, &cfg.rooms.all_room, 1).await?;
            sent.all = 2;
        }
        let s = workers.status().await?;
        m.sample();
        if let Some(k) = kill_us {
            let back =
                s.ready == cfg.connections && s.disconnects > 0 && s.reconnects >= s.disconnects;
            if back && storm_end.is_none() {
                o.storm_s = Some(secs(s.last_ready_us.saturating_sub(k)));
                say(&format!(
                    "  {} dropped connections back in both rooms after {:.2} s",
                    s.disconnects,
                    o.storm_s.unwrap_or_default()
                ));
                storm_end = Some(s.clone());
            }
        }
        let publishing = publish.next.get() < total;
        if !publishing && drain_deadline.is_none() {
            drain_deadline = Some(Instant::now() + cfg.phase_timeout);
            say("  all sent; draining");
        }
        let kill_done = cfg.kill_hub.is_none() || storm_end.is_some();
        let want_personal = publish.ok.get();
        let all_in = s.all_msgs >= sent.all * cfg.connections;
        // Every request answered first: a message of a request still in flight is counted as sent
        // but not yet in `want_personal`, and stopping before it arrives would count it lost.
        if !publishing
            && publish.all_answered()
            && kill_done
            && all_in
            && s.personal_msgs >= want_personal
        {
            break;
        }
        if drain_deadline.is_some_and(|d| Instant::now() > d) {
            say(&format!(
                "  drain timed out: personal {}/{want_personal}, common room {}/{}, ready {}",
                s.personal_msgs,
                s.all_msgs,
                sent.all * cfg.connections,
                s.ready
            ));
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    for t in tasks {
        t.await.context("publisher task")?;
    }
    m.phase("personal messages + kill + drain");
    let sent_window = publish.window_s();
    sent.personal = publish.next.get().min(total);
    sent.personal_failed = publish.failed.borrow().clone();
    o.personal_sent = sent.personal;
    o.personal_failed = sent.personal_failed.len() as u64;
    o.personal_unconfirmed = publish.unconfirmed.get();
    o.personal_requests = publish.requests.get();
    o.personal_per_s = (sent_window > 0.0).then(|| publish.ok.get() as f64 / sent_window);
    o.api_p99_ms = quantile_ms(&publish.answer.borrow(), 0.99);
    o.publisher_lag_p99_ms = quantile_ms(&publish.lag.borrow(), 0.99);
    o.first_api_error = publish.first_error.borrow().clone();
    workers.finish(o, &m, &sent).await
}

/// The personal-message schedule, shared by the publisher tasks (one thread: `Cell`s).
struct Publishing {
    total: u64,
    interval_us: f64,
    start_us: u64,
    personal: Personal,
    next: Cell<u64>,
    /// API requests made (each carries one message, or a batch).
    requests: Cell<u64>,
    ok: Cell<u64>,
    last_us: Cell<u64>,
    failed: RefCell<Vec<u64>>,
    /// Of the failed, those whose outcome is unknown (see `fail`).
    unconfirmed: Cell<u64>,
    first_error: RefCell<Option<String>>,
    /// µs: the API's answer time, and how late each request left against its due time.
    answer: RefCell<Histogram<u64>>,
    lag: RefCell<Histogram<u64>>,
}

impl Publishing {
    fn new(total: u64, rate: f64, personal: Personal) -> Self {
        Publishing {
            total,
            interval_us: 1e6 / rate.max(1e-3),
            start_us: unix_us() + 10_000,
            personal,
            next: Cell::new(0),
            requests: Cell::new(0),
            ok: Cell::new(0),
            last_us: Cell::new(0),
            failed: RefCell::new(Vec::new()),
            unconfirmed: Cell::new(0),
            first_error: RefCell::new(None),
            answer: RefCell::new(histogram()),
            lag: RefCell::new(histogram()),
        }
    }

    fn due_us(&self, k: u64) -> u64 {
        self.start_us + (k as f64 * self.interval_us) as u64
    }

    /// Seconds from the first due time to the last answer.
    fn window_s(&self) -> f64 {
        secs(self.last_us.get().saturating_sub(self.start_us))
    }

    /// Every message taken has its answer (published or failed): no request is in flight.
    fn all_answered(&self) -> bool {
        self.ok.get() + self.failed.borrow().len() as u64 >= self.next.get()
    }

    /// Counts message `k`'s answer: a status and body, or the request's error.
    fn answered(&self, k: u64, addr: &str, answer: Answered) {
        match answer {
            Ok((200, _)) => self.ok.set(self.ok.get() + 1),
            Ok((status, body)) => {
                let unknown = body.contains("may still be published");
                self.fail(k, format!("{addr}: {status} {body}"), unknown);
            }
            Err((why, unknown)) => self.fail(k, why, unknown),
        }
    }

    /// `unknown`: the API said the message may still be published (it went to Redis and no
    /// reply came), or the connection was lost mid-request: it may arrive, without fault.
    fn fail(&self, k: u64, why: String, unknown: bool) {
        if unknown {
            self.unconfirmed.set(self.unconfirmed.get() + 1);
        }
        self.failed.borrow_mut().push(k);
        self.first_error.borrow_mut().get_or_insert(why);
    }
}

/// A message's answer: its status and body, or why the request failed and whether the message
/// may have arrived all the same.
type Answered = Result<(u16, String), (String, bool)>;

fn answered(answer: Result<super::api::Reply, ApiError>) -> Answered {
    match answer {
        Ok(r) => Ok((r.status, r.body)),
        // Not connected: the request never left. Anything later: it may have arrived.
        Err(e) => {
            let unknown = !matches!(
                e,
                ApiError::Io {
                    what: "connect",
                    ..
                }
            );
            Err((e.to_string(), unknown))
        }
    }
}

/// One API connection's share of the schedule: message `k` is due at `start + k / rate` and
/// carries that time, so a slow API shows as latency, not as fewer messages. With `batch` above
/// 1 the connection takes, with the next message, every later one already due (at most `batch`).
async fn publisher(p: Rc<Publishing>, mut conn: ApiConn, rooms: Rooms, batch: usize) {
    loop {
        let k = p.next.get();
        if k >= p.total {
            return;
        }
        p.next.set(k + 1);
        let due = p.due_us(k);
        let now = unix_us();
        if due > now {
            tokio::time::sleep(Duration::from_micros(due - now)).await;
        }
        let sent_at = unix_us();
        let mut ks = vec![k];
        while ks.len() < batch && p.next.get() < p.total && p.due_us(p.next.get()) <= sent_at {
            ks.push(p.next.get());
            p.next.set(p.next.get() + 1);
        }
        p.requests.set(p.requests.get() + 1);
        let messages: Vec<String> = ks
            .iter()
            .map(|&k| {
                p.lag
                    .borrow_mut()
                    .saturating_record(sent_at.saturating_sub(p.due_us(k)).max(1));
                let room = rooms.personal_room(p.personal.user_of(k));
                let content = Stamp {
                    kind: Kind::Personal,
                    number: k,
                    due_us: p.due_us(k),
                }
                .content();
                format!(r#"{{"room":"{room}","content":"{content}"}}"#)
            })
            .collect();
        if batch == 1 {
            let answer = conn.post("/api/publish", &messages[0]).await;
            p.answered(k, conn.addr(), answered(answer));
        } else {
            let body = format!(r#"{{"messages":[{}]}}"#, messages.join(","));
            match conn.post("/api/publish/batch", &body).await {
                Ok(r) if r.status == 200 => match batch_results(&r.body, ks.len()) {
                    Ok(items) => {
                        for (&k, item) in ks.iter().zip(items) {
                            p.answered(k, conn.addr(), Ok(item));
                        }
                    }
                    Err(why) => ks.iter().for_each(|&k| p.fail(k, why.clone(), true)),
                },
                answer => {
                    let answer = answered(answer);
                    for &k in &ks {
                        p.answered(k, conn.addr(), answer.clone());
                    }
                }
            }
        }
        let done = unix_us();
        p.last_us.set(p.last_us.get().max(done));
        p.answer
            .borrow_mut()
            .saturating_record(done.saturating_sub(sent_at).max(1));
    }
}

/// A batch's answer as one `(status, body)` per message: 200 and the item for a published one,
/// 503 and the item for a refused one (the bench counts any refusal the same way).
fn batch_results(body: &str, count: usize) -> Result<Vec<(u16, String)>, String> {
    let answer: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("batch answer not JSON: {e}: {body}"))?;
    let items = answer["results"]
        .as_array()
        .filter(|items| items.len() == count)
        .ok_or_else(|| format!("batch answer without {count} results: {body}"))?;
    Ok(items
        .iter()
        .map(|item| {
            let status = if item.get("error").is_some() {
                503
            } else {
                200
            };
            (status, item.to_string())
        })
        .collect())
}

async fn publish_all(api: &mut ApiConn, room: &str, number: u64) -> Result<()> {
    let content = Stamp {
        kind: Kind::All,
        number,
        due_us: unix_us(),
    }
    .content();
    expect_ok(
        api,
        "/api/publish",
        &format!(r#"{{"room":"{room}","content":"{content}"}}"#),
    )
    .await
}

/// Members of `general` across every hub, from the presence API.
async fn general_members(api: &mut ApiConn) -> Option<u64> {
    let r = api.get("/api/rooms/general/presence").await.ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    (r.status == 200).then(|| v["count"].as_u64()).flatten()
}

async fn expect_ok(api: &mut ApiConn, path: &str, body: &str) -> Result<()> {
    let r = api.post(path, body).await?;
    if r.status != 200 {
        bail!("{path} on {}: {} {}", api.addr(), r.status, r.body);
    }
    Ok(())
}

async fn kill(pid: u32) -> Result<()> {
    let status = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await
        .context("run kill")?;
    if !status.success() {
        bail!("kill -KILL {pid}: {status}");
    }
    Ok(())
}

/// The worker processes.
struct Workers {
    list: Vec<WorkerProc>,
}

struct WorkerProc {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl WorkerProc {
    async fn ask<T: serde::de::DeserializeOwned>(&mut self, cmd: &Command) -> Result<T> {
        let line = serde_json::to_string(cmd)? + "\n";
        self.stdin
            .write_all(line.as_bytes())
            .await
            .with_context(|| format!("worker {}: stdin", self.pid))?;
        let answer = tokio::time::timeout(Duration::from_secs(120), self.stdout.next_line())
            .await
            .with_context(|| format!("worker {}: no answer in 120 s", self.pid))??
            .with_context(|| format!("worker {} ended", self.pid))?;
        serde_json::from_str(&answer).with_context(|| format!("worker {}: {answer:?}", self.pid))
    }
}

impl Workers {
    async fn start(cfg: &C250kConfig) -> Result<Self> {
        let exe = std::env::current_exe().context("own executable")?;
        let mut list = Vec::new();
        let per = cfg.per_worker.max(1);
        let mut first = 0;
        while first < cfg.connections {
            let users = per.min(cfg.connections - first);
            let mut child = tokio::process::Command::new(&exe)
                .arg("c250k-worker")
                .arg(format!("--url={}", cfg.urls.join(",")))
                .arg(format!("--first-user={first}"))
                .arg(format!("--users={users}"))
                .arg(format!("--total-users={}", cfg.connections))
                .args(cfg.rooms.to_args())
                .args(cfg.client.to_args())
                .env("C250K_JWT_SECRET", &cfg.jwt_secret)
                .env_remove("C250K_API_KEY")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("start a worker")?;
            let pid = child.id().context("worker pid")?;
            let stdin = child.stdin.take().context("worker stdin")?;
            let stdout = BufReader::new(child.stdout.take().context("worker stdout")?).lines();
            list.push(WorkerProc {
                child,
                pid,
                stdin,
                stdout,
            });
            first += users;
        }
        Ok(Workers { list })
    }

    /// Every worker's status, summed (times: the latest).
    async fn status(&mut self) -> Result<Status> {
        let answers = futures_util::future::try_join_all(
            self.list
                .iter_mut()
                .map(|w| w.ask::<Status>(&Command::Status)),
        )
        .await?;
        Ok(sum(&answers))
    }

    /// Polls until `done` holds (its status) or the timeout passes (`None`).
    async fn wait(
        &mut self,
        m: &mut Meter,
        timeout: Duration,
        done: impl Fn(&Status) -> bool,
    ) -> Result<Option<Status>> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status().await?;
            m.sample();
            if done(&s) {
                return Ok(Some(s));
            }
            if Instant::now() > deadline {
                say(&format!(
                    "  timed out: ready {}/{}, broadcasts {}, common room {}, personal {}, \
                     failed attempts {}, disconnects {}, error frames {} (first: {:?})",
                    s.ready,
                    s.connections,
                    s.broadcasts,
                    s.all_msgs,
                    s.personal_msgs,
                    s.connect_failures,
                    s.disconnects,
                    s.error_frames,
                    s.first_error
                ));
                return Ok(None);
            }
            tokio::time::sleep(POLL / 4).await;
        }
    }

    fn rss_kib(&self) -> Option<u64> {
        let pids: Vec<u32> = self.list.iter().map(|w| w.pid).collect();
        procstat::rss_kib_sum(&pids).ok()
    }

    /// The workers' counts against `sent`, merged into `o`; then they quit.
    async fn finish(mut self, mut o: Outcome, m: &Meter, sent: &Sent) -> Result<Outcome> {
        let report = Command::Report(sent.clone());
        let reports = futures_util::future::try_join_all(
            self.list.iter_mut().map(|w| w.ask::<WorkerReport>(&report)),
        )
        .await?;
        let (mut live, mut replayed) = (histogram(), histogram());
        let status = sum(&reports.iter().map(|r| r.status.clone()).collect::<Vec<_>>());
        for r in &reports {
            o.all += r.all;
            o.personal += r.personal;
            o.broadcast += r.broadcast;
            o.misrouted += r.misrouted;
            o.personal_refused_delivered += r.refused_delivered;
            for (reason, n) in &r.ends {
                *o.ends.entry(reason.clone()).or_insert(0) += n;
            }
            for &(v, n) in &r.latency_live_us {
                live.record_n(v, n).context("latency")?;
            }
            for &(v, n) in &r.latency_replayed_us {
                replayed.record_n(v, n).context("latency")?;
            }
        }
        o.disconnected = status.disconnects;
        o.reconnect_failures = status.connect_failures.saturating_sub(o.connect_failures);
        o.max_reconnect_attempts = status.max_attempts;
        o.not_recovered = status.not_recovered;
        o.gap_recoveries = status.recoveries;
        o.error_frames = status.error_frames;
        o.first_error = status.first_error;
        o.first_duplicate = status.first_duplicate;
        o.first_lost = status.first_lost;
        o.personal_replayed = replayed.len();
        o.personal_live_p99_ms = quantile_ms(&live, 0.99);
        let mut all = live.clone();
        all.add(&replayed).context("latency")?;
        o.personal_p50_ms = quantile_ms(&all, 0.5);
        o.personal_p99_ms = quantile_ms(&all, 0.99);
        o.personal_p999_ms = quantile_ms(&all, 0.999);
        o.personal_max_ms = (!all.is_empty()).then(|| all.max() as f64 / 1000.0);
        let mut m = m.clone();
        m.phase("report");
        o.cpu = m.phases.clone();
        o.cpu_total = m.total();
        for w in &mut self.list {
            let _ = w.stdin.write_all(b"{\"cmd\":\"quit\"}\n").await;
        }
        for w in &mut self.list {
            let _ = tokio::time::timeout(Duration::from_secs(30), w.child.wait()).await;
        }
        Ok(o)
    }
}

fn sum(statuses: &[Status]) -> Status {
    let mut t = Status::default();
    for s in statuses {
        t.connections += s.connections;
        t.ready += s.ready;
        t.ever_ready += s.ever_ready;
        t.first_ready_us = match (t.first_ready_us, s.first_ready_us) {
            (0, x) | (x, 0) => x,
            (a, b) => a.min(b),
        };
        t.last_ready_us = t.last_ready_us.max(s.last_ready_us);
        t.connect_failures += s.connect_failures;
        t.disconnects += s.disconnects;
        t.reconnects += s.reconnects;
        t.max_attempts = t.max_attempts.max(s.max_attempts);
        t.not_recovered += s.not_recovered;
        t.recoveries += s.recoveries;
        t.error_frames += s.error_frames;
        if t.first_error.is_none() {
            t.first_error.clone_from(&s.first_error);
        }
        if t.first_duplicate.is_none() {
            t.first_duplicate.clone_from(&s.first_duplicate);
        }
        if t.first_lost.is_none() {
            t.first_lost.clone_from(&s.first_lost);
        }
        t.broadcasts += s.broadcasts;
        t.broadcast_last_us = t.broadcast_last_us.max(s.broadcast_last_us);
        t.all_msgs += s.all_msgs;
        t.all_last_us = t.all_last_us.max(s.all_last_us);
        t.personal_msgs += s.personal_msgs;
        t.rss_start_kib += s.rss_start_kib;
    }
    t
}

/// CPU of the hubs, Redis and the generator, sampled as the run goes (a killed hub keeps its last
/// reading), cut into phases.
#[derive(Debug, Clone)]
struct Meter {
    hub_pids: Vec<u32>,
    redis_pid: u32,
    worker_pids: Vec<u32>,
    /// Last CPU µs read per process.
    last: HashMap<u32, u64>,
    phase_start: Reading,
    origin: Reading,
    phases: Vec<PhaseCpu>,
}

/// CPU µs so far, by kind of process, at one moment.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    hubs: u64,
    redis: u64,
    workers: u64,
    coordinator: u64,
}

impl Meter {
    fn new(cfg: &C250kConfig) -> Self {
        let zero = Reading {
            at: Instant::now(),
            hubs: 0,
            redis: 0,
            workers: 0,
            coordinator: 0,
        };
        let mut m = Meter {
            hub_pids: cfg.hub_pids.clone(),
            redis_pid: cfg.redis_pid,
            worker_pids: Vec::new(),
            last: HashMap::new(),
            phase_start: zero,
            origin: zero,
            phases: Vec::new(),
        };
        m.sample();
        m.phase_start = m.reading();
        m.origin = m.phase_start;
        m
    }

    fn sample(&mut self) {
        let pids: Vec<u32> = self
            .hub_pids
            .iter()
            .chain(&self.worker_pids)
            .copied()
            .chain([self.redis_pid, std::process::id()])
            .collect();
        for pid in pids {
            if let Ok(us) = procstat::cpu_us(pid) {
                self.last.insert(pid, us);
            }
        }
    }

    fn reading(&self) -> Reading {
        let get = |p: &u32| self.last.get(p).copied().unwrap_or(0);
        Reading {
            at: Instant::now(),
            hubs: self.hub_pids.iter().map(get).sum(),
            redis: get(&self.redis_pid),
            workers: self.worker_pids.iter().map(get).sum(),
            coordinator: get(&std::process::id()),
        }
    }

    fn phase(&mut self, name: &str) {
        self.sample();
        let now = self.reading();
        self.phases.push(cpu_between(name, self.phase_start, now));
        self.phase_start = now;
    }

    fn total(&self) -> PhaseCpu {
        cpu_between("whole run", self.origin, self.reading())
    }

    fn hub_rss_mib(&self) -> Option<f64> {
        let alive: Vec<u32> = self
            .hub_pids
            .iter()
            .copied()
            .filter(|p| procstat::rss_kib(*p).is_ok())
            .collect();
        procstat::rss_kib_sum(&alive).ok().map(kib_to_mib)
    }
}

fn cpu_between(name: &str, a: Reading, b: Reading) -> PhaseCpu {
    let s = |after: u64, before: u64| secs(after.saturating_sub(before));
    PhaseCpu {
        phase: name.into(),
        wall_s: (b.at - a.at).as_secs_f64(),
        hubs_s: s(b.hubs, a.hubs),
        redis_s: s(b.redis, a.redis),
        generator_s: s(b.workers + b.coordinator, a.workers + a.coordinator),
        coordinator_s: s(b.coordinator, a.coordinator),
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

fn quantile_ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

fn millis(us: u64) -> f64 {
    us as f64 / 1e3
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn say(line: &str) {
    eprintln!("c250k: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_answer_gives_each_message_its_own_status_or_fails_whole() {
        let body = r#"{"results":[{"id":"a","offset":1,"epoch":"e"},
            {"error":{"code":"unavailable","message":"the message may still be published"}}]}"#;
        let items = batch_results(body, 2).expect("two results");
        assert_eq!(items[0].0, 200);
        assert_eq!(items[1].0, 503);
        assert!(items[1].1.contains("may still be published"), "{items:?}");
        assert!(batch_results(body, 3).is_err(), "a result per message");
        assert!(batch_results("not json", 1).is_err());
        assert!(batch_results(r#"{"error":{"code":"bad_batch"}}"#, 1).is_err());
    }

    #[test]
    fn the_drain_waits_until_every_message_taken_has_its_answer() {
        let p = Publishing::new(10, 1000.0, Personal::new(10));
        assert!(p.all_answered(), "nothing taken yet");
        p.next.set(3); // a batch of three in flight
        p.answered(0, "hub", Ok((200, "{}".into())));
        assert!(!p.all_answered(), "two still in flight");
        p.answered(1, "hub", Ok((503, "nothing was published".into())));
        assert!(!p.all_answered(), "one still in flight");
        p.answered(2, "hub", Err(("reset".into(), true)));
        assert!(p.all_answered());
        assert_eq!((p.ok.get(), p.failed.borrow().len()), (1, 2));
    }
}
