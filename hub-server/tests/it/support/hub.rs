//! A real hub-server process on loopback, its output captured to a log file that is printed when a
//! test fails. The process is killed when the value is dropped.
//!
//! A hub listens on port 0 (its API too) and the test reads the port the kernel gave it from the
//! hub's `hub listening addr=…` / `server API listening addr=…` log lines: no port is picked by the
//! test, released, and bound later by the hub, so no other process can take it in between.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::RedisServer;
use super::http::{self, Response};

const BIN: &str = env!("CARGO_BIN_EXE_hub-server");

/// How to start a hub: its name, the Redis it bridges through (none = standalone), extra env.
pub struct HubBuilder {
    name: String,
    redis_url: Option<String>,
    env: Vec<(String, String)>,
    port: Option<u16>,
    /// The server API's key; the API listens on a port of its own (port 0) when set.
    api_key: Option<String>,
}

impl HubBuilder {
    pub fn redis(mut self, redis: &RedisServer) -> Self {
        self.redis_url = Some(redis.url());
        self
    }

    /// Reach Redis at `url` (a proxy in front of it, say) rather than a [`RedisServer`]'s own.
    pub fn redis_url(mut self, url: &str) -> Self {
        self.redis_url = Some(url.to_owned());
        self
    }

    /// Listen on `port` (a restarted hub where its clients expect it) instead of one the kernel
    /// picks. [`HubBuilder::start`] waits while another process holds it.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Turn the server API on (`HUB_API_KEYS`), on a port the kernel picks: [`Hub::api_port`].
    pub fn api(mut self, key: &str) -> Self {
        self.api_key = Some(key.to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// [`HubBuilder::env`] for each pair.
    pub fn envs(self, pairs: &[(&str, &str)]) -> Self {
        pairs.iter().fold(self, |b, (key, value)| b.env(key, value))
    }

    /// A bridge that notices an outage within ~1.5 s (pings every 500 ms, 1 s to answer) and
    /// reconnects at least every 500 ms, for tests that cut Redis off.
    pub fn fast_bridge(self) -> Self {
        self.envs(&[
            ("HUB_REDIS_PING_INTERVAL", "500ms"),
            ("HUB_REDIS_TIMEOUT", "1s"),
            ("HUB_RECONNECT_MAX", "500ms"),
        ])
    }

    /// `auth_mode = jwt` with the HS256 `secret`.
    pub fn jwt(self, secret: &str) -> Self {
        self.envs(&[("HUB_AUTH_MODE", "jwt"), ("HUB_JWT_SECRETS", secret)])
    }

    /// No rate limit worth the name: for tests whose flood is what they are about.
    pub fn unlimited(self) -> Self {
        self.envs(&[
            ("HUB_RATE_LIMIT_PER_SEC", "1000000"),
            ("HUB_RATE_LIMIT_BURST", "1000000"),
        ])
    }

    /// Spawn the hub, learn its ports, and wait until GET /health answers 200 (bridge up, or
    /// disabled standalone).
    pub async fn start(self) -> Hub {
        // A hub restarted on a given port may find it taken for a while (by a process that got it
        // from the kernel while the port was free): wait for it, bounded.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut hub = loop {
            let mut hub = self.spawn_once();
            match hub.wait_listening().await {
                Ok(()) => break hub,
                Err(log)
                    if self.port.is_some()
                        && log.contains("Address already in use")
                        && Instant::now() < deadline =>
                {
                    eprintln!(
                        "hub {}: port {:?} taken, retrying: {}",
                        self.name,
                        self.port,
                        log.lines().last().unwrap_or_default()
                    );
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(log) => panic!(
                    "hub {} exited before it listened; its log:\n{log}",
                    self.name
                ),
            }
        };
        hub.wait_ready().await;
        hub
    }

    /// Spawn the hub without waiting for it: for a hub expected not to start. Its `port` and
    /// `api_port` are 0 until [`Hub::wait_listening`]; use [`HubBuilder::start`] for a hub to talk to.
    pub fn spawn(self) -> Hub {
        self.spawn_once()
    }

    fn spawn_once(&self) -> Hub {
        let log_path = std::env::temp_dir().join(format!(
            "hub-it-{}-{}.log",
            self.name,
            uuid::Uuid::new_v4().simple()
        ));
        let log = File::create(&log_path).expect("create hub log file");
        let mut cmd = Command::new(BIN);
        // A clean environment: a REDIS_URL or HUB_* exported in the developer's shell must not leak in.
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "HUB_LISTEN",
                format!("127.0.0.1:{}", self.port.unwrap_or(0)),
            )
            .env("HUB_NAME", &self.name);
        if let Some(url) = &self.redis_url {
            cmd.env("REDIS_URL", url);
        }
        if let Some(key) = &self.api_key {
            cmd.env("HUB_API_KEYS", key)
                .env("HUB_API_LISTEN", "127.0.0.1:0");
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        Hub {
            name: self.name.clone(),
            port: 0,
            api_port: self.api_key.as_ref().map(|_| 0),
            api_key: self.api_key.clone(),
            child: Some(child),
            log_path,
        }
    }
}

/// The address a `message` log line of the hub names in its `addr` field, in the text format
/// (`… message addr=127.0.0.1:40123 …`) or the JSON one (`"message":"…","addr":"127.0.0.1:40123"`).
fn logged_port(log: &str, message: &str) -> Option<u16> {
    let line = log.lines().find(|line| line.contains(message))?;
    let addr = if let Some((_, rest)) = line.split_once("\"addr\":\"") {
        rest.split('"').next()?
    } else {
        line.split_once(" addr=")?.1.split_whitespace().next()?
    };
    addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
}

pub struct Hub {
    pub name: String,
    /// Where the hub listens, as it logged it.
    pub port: u16,
    /// Where the server API listens (when the builder turned it on), as the hub logged it.
    pub api_port: Option<u16>,
    api_key: Option<String>,
    child: Option<Child>,
    log_path: PathBuf,
}

impl Hub {
    pub fn builder(name: &str) -> HubBuilder {
        HubBuilder {
            name: name.to_owned(),
            redis_url: None,
            env: Vec::new(),
            port: None,
            api_key: None,
        }
    }

    /// A hub bridged through `redis`, default settings.
    pub async fn with_redis(name: &str, redis: &RedisServer) -> Hub {
        Self::builder(name).redis(redis).start().await
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("hub already exited").id()
    }

    /// The hub's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Everything the hub printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn health(&self) -> std::io::Result<Response> {
        http::get(self.port, "/health").await
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
            .unwrap_or_else(|| panic!("hub {} runs without the server API", self.name))
    }

    /// A request to the server API with `headers` as given (no key added).
    pub async fn api_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        http::request(self.api_port(), method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("hub {}: {method} {path}: {e}", self.name))
    }

    /// A request to the server API with the hub's key.
    pub async fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let key = self.api_key.as_deref().expect("hub has an API key");
        let auth = format!("Bearer {key}");
        let body = body.map(Value::to_string);
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.api_raw(method, path, &headers, body.as_deref().map(str::as_bytes))
            .await
    }

    /// `POST path` with the hub's key and `body` as JSON.
    pub async fn api_post(&self, path: &str, body: &Value) -> Response {
        self.api("POST", path, Some(body)).await
    }

    /// `GET /metrics` (no key needed): the text.
    pub async fn metrics(&self) -> String {
        let resp = self.api_raw("GET", "/metrics", &[], None).await;
        assert_eq!(
            resp.status, 200,
            "hub {}: GET /metrics: {resp:?}",
            self.name
        );
        resp.body
    }

    /// Wait (bounded) until the hub logs where it listens and take its ports from there; the
    /// hub's log if it exits first.
    pub async fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            // The API binds (and logs) before the hub logs its own listener.
            if let Some(port) = logged_port(&log, "hub listening") {
                self.port = port;
                if self.api_port.is_some() {
                    let api = logged_port(&log, "server API listening");
                    self.api_port = Some(api.unwrap_or_else(|| {
                        panic!("hub {} logged no API address:\n{log}", self.name)
                    }));
                }
                return Ok(());
            }
            let child = self.child.as_mut().expect("hub already reaped");
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("({status})\n{}", self.log()));
            }
            assert!(
                Instant::now() < deadline,
                "hub {} logged no `hub listening addr=` line within 20 s (info logs of hub_server \
                 needed); its log:\n{log}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The value of one series of `GET /metrics` (`name{label="value"}` as exposed); panics when
    /// the hub does not expose it.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("hub {}: no series {series} in\n{text}", self.name))
    }

    /// Scrape until `series` is `value` (at most `within`); a value past it fails at once. (That
    /// it stays there is for the caller to show, after whatever could still move it.)
    pub async fn wait_metric(&self, series: &str, value: f64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let now = self.metric(series).await;
            assert!(
                now <= value,
                "hub {}: {series} is {now}, past {value}",
                self.name
            );
            if now == value {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "hub {}: {series} is {now}, not {value}, after {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(resp) = self.health().await
                && resp.status == 200
            {
                return;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "hub {} never answered GET /health with 200 within 20 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn assert_running(&mut self) {
        let child = self.child.as_mut().expect("hub already reaped");
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "hub {} exited early ({status}); its log:\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// Poll /health until its status and `bridge` field are as expected; returns how long it took.
    pub async fn wait_health(&self, status: u16, bridge: &str, within: Duration) -> Duration {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < within {
            if let Ok(resp) = self.health().await {
                if resp.status == status && resp.json()["bridge"] == bridge {
                    return start.elapsed();
                }
                last = Some(resp);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "hub {}: /health did not become {status} with \"bridge\":\"{bridge}\" within {within:?}; last: {last:?}",
            self.name
        );
    }

    /// The `connections` gauge from /health.
    pub async fn connections(&self) -> Option<u64> {
        let resp = self.health().await.ok()?;
        resp.json().get("connections").and_then(Value::as_u64)
    }

    /// SIGKILL: the hub dies without closing anything, as in a crash; waits until it is gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Send SIGTERM, as `docker stop` does.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Wait until the process exits; `None` if it is still running after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut().expect("hub already reaped");
            if let Some(status) = child.try_wait().expect("try_wait on hub") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!(
                "----- hub {} (port {}) log tail, full log: {} -----\n{}\n-----",
                self.name,
                self.port,
                self.log_path.display(),
                tail.join("\n")
            );
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}
