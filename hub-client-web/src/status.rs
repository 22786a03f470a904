//! The status page's figures: a poller reads every configured hub API once a second (`GET /api/hubs`
//! for the cluster's live hubs and which API is which hub, `GET /metrics` for rates and lag), keeps
//! the last five minutes, and the page asks `/status/data` for what is new. The API key stays here.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::hub_api::{FetchError, HubApi};
use crate::prom::{self, Scrape};

/// How often the hubs are read, and the charts' step.
pub const TICK: Duration = Duration::from_secs(1);
/// What the charts cover; a hub down for longer than this leaves the page.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Points kept: one per tick over the window.
const POINTS: usize = 300;
/// The lag p99 is of the observations in this last stretch.
const LAG_WINDOW: Duration = Duration::from_secs(10);
/// Deliveries per second from `/metrics`: over this stretch (a one-second difference jitters with
/// the scrape times of a busy machine).
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// Without `/metrics`, from the heartbeat's counter (written every `hub_heartbeat`, 2 s): longer.
const BEAT_RATE_WINDOW: Duration = Duration::from_secs(6);
/// One request's deadline; a hub slower than this twice in a row is shown down.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// One hub as `GET /api/hubs` lists it (unknown fields ignored: the hub may add figures).
#[derive(Debug, Clone, Deserialize)]
pub struct HubInfo {
    pub instance_id: String,
    pub name: String,
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub rooms: u64,
    #[serde(default)]
    pub users: u64,
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub started_at: String,
}

#[derive(Debug, Deserialize)]
struct HubsAnswer {
    hubs: Vec<HubInfo>,
    #[serde(default)]
    answered_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HubState {
    Up,
    /// Serving, but without Redis: its clients chat with each other only.
    Degraded,
    Down,
}

/// What the page shows of one hub now.
#[derive(Debug, Clone, Serialize)]
pub struct HubView {
    pub id: String,
    pub name: String,
    pub state: HubState,
    /// Why it is not up, in words.
    pub reason: String,
    pub connections: u64,
    pub rooms: u64,
    pub users: u64,
    pub deliveries_per_sec: Option<f64>,
    pub lag_p99_ms: Option<f64>,
    /// The bridge as the hub's heartbeat last said: `up`, `down`, `disabled`.
    pub bridge: String,
    /// `realtime_hub_redis_up` from its `/metrics`; `None` when not scraped (or standalone).
    pub redis_up: Option<bool>,
    /// Whether this server reads the hub's own API (`api_urls`): rates and lag need it.
    pub scraped: bool,
    pub started_at: String,
}

/// The cluster registry as the last poll found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registry {
    /// Not read yet.
    Pending,
    Ok,
    /// A hub answered 503: Redis, where the registry lives, does not answer.
    RedisUnavailable,
    /// A hub answered 401: `api_key` is not one of the hubs' keys.
    Unauthorized,
    /// No configured API answered at all.
    Unreachable,
}

/// One chart step: per hub, connections, deliveries/s, lag p99 (ms) and state.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub seq: u64,
    /// Unix milliseconds.
    pub t: u64,
    pub hubs: Vec<PointHub>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PointHub {
    pub id: String,
    pub c: u64,
    pub d: Option<f64>,
    pub l: Option<f64>,
    pub s: HubState,
}

/// The answer of `/status/data`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// False when this server has no `api_urls`: the page says how to turn it on.
    pub configured: bool,
    pub registry: Registry,
    pub tick_ms: u64,
    pub window_ms: u64,
    /// The newest point's `seq`: the page asks `?since=` it next time.
    pub seq: u64,
    pub hubs: Vec<HubView>,
    /// Points after the `since` asked for (all kept, without one).
    pub points: Vec<Point>,
}

#[derive(Debug)]
struct Published {
    registry: Registry,
    hubs: Vec<HubView>,
    points: VecDeque<Point>,
}

/// The shared, cloneable handle the routes read and the poller writes.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    configured: bool,
    inner: Arc<Mutex<Published>>,
    /// When a page last asked: the hubs are read only while someone watched in the last
    /// [`WINDOW`] (each read is a request in every hub's log; an unwatched page costs nothing).
    asked: Arc<Mutex<Option<Instant>>>,
}

impl StatusBoard {
    fn new(configured: bool) -> Self {
        StatusBoard {
            configured,
            inner: Arc::new(Mutex::new(Published {
                registry: Registry::Pending,
                hubs: Vec::new(),
                points: VecDeque::with_capacity(POINTS),
            })),
            asked: Arc::new(Mutex::new(None)),
        }
    }

    fn watched(&self) -> bool {
        let asked = *self.asked.lock().unwrap_or_else(|e| e.into_inner());
        asked.is_some_and(|at| at.elapsed() < WINDOW)
    }

    /// A board that is never filled: no `api_urls`.
    pub fn unconfigured() -> Self {
        Self::new(false)
    }

    pub fn snapshot(&self, since: Option<u64>) -> Snapshot {
        *self.asked.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        // A poisoned lock means the poller panicked mid-update; what it held is still the last
        // published state, which is what the page should see.
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let points = p
            .points
            .iter()
            .filter(|pt| since.is_none_or(|s| pt.seq > s))
            .cloned()
            .collect();
        Snapshot {
            configured: self.configured,
            registry: p.registry,
            tick_ms: TICK.as_millis() as u64,
            window_ms: WINDOW.as_millis() as u64,
            seq: p.points.back().map_or(0, |pt| pt.seq),
            hubs: p.hubs.clone(),
            points,
        }
    }

    fn publish(&self, registry: Registry, hubs: Vec<HubView>, point: Point) {
        let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        p.registry = registry;
        p.hubs = hubs;
        if p.points.len() == POINTS {
            p.points.pop_front();
        }
        p.points.push_back(point);
    }
}

/// Starts the poller when `api_urls` is set; the handle is aborted when the server stops.
pub fn start(settings: &Settings) -> (StatusBoard, Option<JoinHandle<()>>) {
    let urls = settings.api_urls();
    let Some(key) = settings.api_key.clone().filter(|_| !urls.is_empty()) else {
        return (StatusBoard::unconfigured(), None);
    };
    let board = StatusBoard::new(true);
    let poller = Poller::new(urls, HubApi::new(key, REQUEST_TIMEOUT), board.clone());
    (board, Some(tokio::spawn(poller.run())))
}

/// What one configured API said this tick.
#[derive(Debug)]
struct Reading {
    hubs: Result<HubsAnswer, FetchError>,
    metrics: Result<Scrape, FetchError>,
}

/// Everything the poller remembers of one hub.
#[derive(Debug)]
struct Track {
    info: HubInfo,
    /// In the registry's last answer.
    listed: bool,
    /// Not listed, or its API not answering, since then.
    down_since: Option<Instant>,
    /// The configured API that answered as this hub, and how its last reads went.
    api: Option<String>,
    api_failures: u32,
    api_error: Option<FetchError>,
    scrapes: VecDeque<(Instant, Scrape)>,
    beats: VecDeque<(Instant, u64)>,
}

impl Track {
    fn new(info: HubInfo) -> Self {
        Track {
            info,
            listed: true,
            down_since: None,
            api: None,
            api_failures: 0,
            api_error: None,
            scrapes: VecDeque::new(),
            beats: VecDeque::new(),
        }
    }

    /// Refused or broken at once is down; a slow answer twice in a row (a busy machine is not a
    /// dead hub).
    fn api_down(&self) -> bool {
        match &self.api_error {
            Some(FetchError::Timeout(_)) => self.api_failures >= 2,
            Some(FetchError::Unreachable(_)) => true,
            // It answered, even if with an error: it is running.
            Some(_) | None => false,
        }
    }

    fn state(&self, registry_known: bool) -> (HubState, String) {
        if self.api_down() {
            let why = self
                .api_error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return (HubState::Down, format!("its API does not answer ({why})"));
        }
        if registry_known && !self.listed {
            return (
                HubState::Down,
                "gone from the cluster's hub registry (no heartbeat)".into(),
            );
        }
        let redis_up = self.scrapes.back().and_then(|(_, s)| s.redis_up);
        if redis_up == Some(false) || self.info.bridge == "down" {
            return (HubState::Degraded, "Redis does not answer this hub".into());
        }
        (HubState::Up, String::new())
    }

    fn deliveries_per_sec(&self, now: Instant) -> Option<f64> {
        if let Some((t1, last)) = self.scrapes.back()
            && now.duration_since(*t1) <= TICK * 3
            && let Some(d1) = last.delivered
        {
            let (t0, d0) = self
                .scrapes
                .iter()
                .find(|(t, s)| t1.duration_since(*t) <= RATE_WINDOW && s.delivered.is_some())
                .map(|(t, s)| (*t, s.delivered.unwrap_or(d1)))?;
            return rate(t0, d0, *t1, d1);
        }
        let (t1, d1) = self.beats.back()?;
        let (t0, d0) = self
            .beats
            .iter()
            .find(|(t, _)| t1.duration_since(*t) <= BEAT_RATE_WINDOW)?;
        rate(*t0, *d0 as f64, *t1, *d1 as f64)
    }

    fn lag_p99_ms(&self) -> Option<f64> {
        let (t1, last) = self.scrapes.back()?;
        if last.lag_buckets.is_empty() {
            return None;
        }
        let (_, first) = self
            .scrapes
            .iter()
            .find(|(t, _)| t1.duration_since(*t) <= LAG_WINDOW)?;
        prom::quantile(0.99, &first.lag_buckets, &last.lag_buckets).map(|s| s * 1000.0)
    }

    fn view(&self, now: Instant, registry_known: bool) -> HubView {
        let (state, reason) = self.state(registry_known);
        let live = state != HubState::Down;
        // A dead hub's last heartbeat says nothing about its bridge now.
        let (bridge, redis_up) = if live {
            let redis_up = self.scrapes.back().and_then(|(_, s)| s.redis_up);
            (self.info.bridge.clone(), redis_up)
        } else {
            ("unknown".to_owned(), None)
        };
        HubView {
            id: self.info.instance_id.clone(),
            name: self.info.name.clone(),
            state,
            reason,
            connections: self.info.connections,
            rooms: self.info.rooms,
            users: self.info.users,
            deliveries_per_sec: live.then(|| self.deliveries_per_sec(now)).flatten(),
            lag_p99_ms: live.then(|| self.lag_p99_ms()).flatten(),
            bridge,
            redis_up,
            scraped: self.api.is_some(),
            started_at: self.info.started_at.clone(),
        }
    }
}

/// `(v1 - v0) / (t1 - t0)`; a counter that went down (the hub restarted) gives no figure.
fn rate(t0: Instant, v0: f64, t1: Instant, v1: f64) -> Option<f64> {
    let dt = t1.duration_since(t0).as_secs_f64();
    (dt > 0.0 && v1 >= v0).then(|| (v1 - v0) / dt)
}

struct Poller {
    urls: Vec<String>,
    api: HubApi,
    board: StatusBoard,
    /// Which hub (instance id) each configured API answered as, last time it said.
    owners: HashMap<String, String>,
    tracks: HashMap<String, Track>,
    seq: u64,
}

impl Poller {
    fn new(urls: Vec<String>, api: HubApi, board: StatusBoard) -> Self {
        Poller {
            urls,
            api,
            board,
            owners: HashMap::new(),
            tracks: HashMap::new(),
            seq: 0,
        }
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !self.board.watched() {
                continue;
            }
            let readings = self.read_all().await;
            self.apply(Instant::now(), readings);
        }
    }

    /// Every configured API at once, each with its own deadline.
    async fn read_all(&self) -> Vec<(String, Reading)> {
        let mut set = tokio::task::JoinSet::new();
        for (i, url) in self.urls.iter().enumerate() {
            let (api, url) = (self.api.clone(), url.clone());
            set.spawn(async move {
                let (hubs, metrics) =
                    tokio::join!(api.get(&url, "/api/hubs"), api.get(&url, "/metrics"));
                let hubs = hubs.and_then(|body| {
                    serde_json::from_slice::<HubsAnswer>(&body)
                        .map_err(|e| FetchError::Unreachable(format!("not a hub list: {e}")))
                });
                let metrics = metrics.map(|body| prom::parse(&String::from_utf8_lossy(&body)));
                (i, url, Reading { hubs, metrics })
            });
        }
        let mut out: Vec<(usize, String, Reading)> = Vec::with_capacity(self.urls.len());
        while let Some(done) = set.join_next().await {
            if let Ok(r) = done {
                out.push(r);
            }
        }
        // The registry is taken from the first API in the configured order that answers.
        out.sort_by_key(|(i, _, _)| *i);
        out.into_iter().map(|(_, url, r)| (url, r)).collect()
    }

    fn apply(&mut self, now: Instant, readings: Vec<(String, Reading)>) {
        let registry = self.read_registry(now, &readings);
        for (url, reading) in readings {
            self.read_api(now, url, reading);
        }
        let registry_known = registry == Registry::Ok;
        for track in self.tracks.values_mut() {
            let down = track.state(registry_known).0 == HubState::Down;
            track.down_since = if down {
                track.down_since.or(Some(now))
            } else {
                None
            };
        }
        // A hub down for the whole window has nothing left to show.
        self.tracks.retain(|_, t| {
            t.down_since
                .is_none_or(|since| now.duration_since(since) < WINDOW)
        });
        self.owners.retain(|_, id| self.tracks.contains_key(id));

        let mut views: Vec<HubView> = self
            .tracks
            .values()
            .map(|t| t.view(now, registry_known))
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        self.seq += 1;
        let point = Point {
            seq: self.seq,
            t: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            hubs: views
                .iter()
                .map(|v| PointHub {
                    id: v.id.clone(),
                    c: v.connections,
                    d: v.deliveries_per_sec,
                    l: v.lag_p99_ms,
                    s: v.state,
                })
                .collect(),
        };
        self.board.publish(registry, views, point);
    }

    /// The live hubs from the first API that listed them; every listed hub's heartbeat figures.
    fn read_registry(&mut self, now: Instant, readings: &[(String, Reading)]) -> Registry {
        let answer = readings.iter().find_map(|(_, r)| r.hubs.as_ref().ok());
        let Some(answer) = answer else {
            let errors = || readings.iter().filter_map(|(_, r)| r.hubs.as_ref().err());
            return if errors().any(|e| *e == FetchError::Status(401)) {
                Registry::Unauthorized
            } else if errors().any(|e| matches!(e, FetchError::Status(_))) {
                Registry::RedisUnavailable
            } else {
                Registry::Unreachable
            };
        };
        for track in self.tracks.values_mut() {
            track.listed = false;
        }
        for info in &answer.hubs {
            let track = self
                .tracks
                .entry(info.instance_id.clone())
                .or_insert_with(|| Track::new(info.clone()));
            track.info = info.clone();
            track.listed = true;
            track.beats.push_back((now, info.delivered));
            while track
                .beats
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > BEAT_RATE_WINDOW * 2)
            {
                track.beats.pop_front();
            }
        }
        Registry::Ok
    }

    /// One configured API: which hub it is, whether it answers, its scrape.
    fn read_api(&mut self, now: Instant, url: String, reading: Reading) {
        if let Ok(answer) = &reading.hubs
            && let Some(id) = &answer.answered_by
        {
            self.owners.insert(url.clone(), id.clone());
        }
        let Some(track) = self.owners.get(&url).and_then(|id| self.tracks.get_mut(id)) else {
            return;
        };
        track.api = Some(url);
        match reading.metrics {
            Ok(scrape) => {
                track.api_failures = 0;
                track.api_error = None;
                track.scrapes.push_back((now, scrape));
                while track
                    .scrapes
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > LAG_WINDOW + TICK)
                {
                    track.scrapes.pop_front();
                }
            }
            Err(e) => {
                track.api_failures += 1;
                track.api_error = Some(e);
            }
        }
    }
}
