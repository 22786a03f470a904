//! A real hub-server process for a scenario. It listens on port 0 (its API too); the harness reads
//! the ports it got from its log lines, so no port is picked, released and rebound. Ready once
//! `GET /health` answers 200 (bridge up, or standalone). Publishes and history reads go through
//! the SDK's own server API client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hub_client::api::{ApiClient, HistoryQuery, Published};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::procs::Proc;

pub const API_KEY: &str = "sdk-conformance-api-key-0123456789";

pub struct HubProcess {
    pub name: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    proc: Option<Proc>,
    pub port: u16,
    pub api_port: u16,
}

impl HubProcess {
    pub fn new(name: &str, bin: &Path, env: Vec<(String, String)>, log_dir: &Path) -> Self {
        HubProcess {
            name: name.to_owned(),
            bin: bin.to_owned(),
            env,
            log_dir: log_dir.to_owned(),
            proc: None,
            port: 0,
            api_port: 0,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.name))
    }

    /// A new process (new ports, new instance id), ready.
    pub async fn start(&mut self) -> Result<(), String> {
        self.kill().await;
        let mut env = vec![
            ("HUB_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("HUB_API_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("HUB_API_KEYS".to_owned(), API_KEY.to_owned()),
            ("HUB_NAME".to_owned(), self.name.clone()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        env.extend(self.env.iter().cloned());
        let (tx, mut lines) = mpsc::unbounded_channel();
        let proc = Proc::start(&self.bin, &[], &env, self.log_path(), Some(tx))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut ws, mut api) = (None, None);
        while ws.is_none() || api.is_none() {
            let line = tokio::time::timeout_at(deadline, lines.recv()).await;
            match line {
                Ok(Some(line)) => {
                    if line.contains("hub listening") {
                        ws = logged_port(&line);
                    } else if line.contains("server API listening") {
                        api = logged_port(&line);
                    }
                }
                _ => {
                    return Err(format!(
                        "hub {} did not start; see {}",
                        self.name,
                        self.log_path().display()
                    ));
                }
            }
        }
        self.port = ws.unwrap_or_default();
        self.api_port = api.unwrap_or_default();
        self.proc = Some(proc);
        self.wait_ready(Duration::from_secs(30)).await
    }

    /// Waits until `/health` answers 200: the Redis bridge is up (or the hub is standalone).
    pub async fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if !self.proc.as_mut().is_some_and(Proc::running) {
                return Err(format!(
                    "hub {} exited; see {}",
                    self.name,
                    self.log_path().display()
                ));
            }
            if health(self.port).await == Some(200) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "hub {} not ready within {within:?}; see {}",
            self.name,
            self.log_path().display()
        ))
    }

    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Proc::running)
    }

    pub async fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill().await;
        }
    }

    /// A handle on the hub's server API, for tasks of their own.
    pub fn api(&self) -> Api {
        Api::new(&self.name, self.api_port)
    }
}

/// The server API of one hub (its name for messages, its API port).
#[derive(Clone)]
pub struct Api {
    name: String,
    client: ApiClient,
}

impl Api {
    pub fn new(name: &str, api_port: u16) -> Api {
        Api {
            name: name.to_owned(),
            client: ApiClient::new(&format!("http://127.0.0.1:{api_port}"), API_KEY)
                .expect("loopback API URL"),
        }
    }

    /// `POST /api/publish`, retried with the same idempotency key while the hub answers 503 or
    /// 409 or cannot be reached: a publish retried through an outage is stored once.
    pub async fn publish(&self, room: &str, content: &str, key: &str) -> Result<Published, String> {
        let api = &self.client;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match api.publish(room, content, None, Some(key)).await {
                Ok(published) => return Ok(published),
                Err(e) if matches!(e.status, Some(503 | 409) | None) => e.to_string(),
                Err(e) => return Err(format!("publish of {content} refused: {e}")),
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "publish of {content} through {} failed for 30 s: {last}",
                    self.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `POST /api/broadcast`.
    pub async fn broadcast(&self, content: &str) -> Result<(), String> {
        self.client
            .broadcast(content, None)
            .await
            .map(|_| ())
            .map_err(|e| format!("broadcast through {}: {e}", self.name))
    }

    /// The room's stored messages, oldest first.
    pub async fn history(&self, room: &str) -> Result<Vec<serde_json::Value>, String> {
        let query = HistoryQuery {
            limit: Some(10_000),
            since: None,
        };
        self.client
            .history(room, &query)
            .await
            .map(|h| h.messages)
            .map_err(|e| format!("history of {room} through {}: {e}", self.name))
    }
}

/// `… addr=127.0.0.1:40123 …` (text logs) or `"addr":"127.0.0.1:40123"` (JSON logs) → 40123.
fn logged_port(line: &str) -> Option<u16> {
    let addr = if let Some((_, rest)) = line.split_once("\"addr\":\"") {
        rest.split('"').next()?
    } else {
        line.split_once(" addr=")?.1.split_whitespace().next()?
    };
    addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
}

/// The status of `GET /health` on loopback `port`.
async fn health(port: u16) -> Option<u16> {
    let exchange = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut head = vec![0u8; 64];
        let n = s.read(&mut head).await.ok()?;
        let text = String::from_utf8_lossy(&head[..n]).into_owned();
        text.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}
