//! A real HTTP backend for the hook tests: a hyper HTTP/1.1 server on a free loopback port that
//! checks every request's `X-Hub-Signature` (HMAC-SHA256 of the body with the shared secret) and
//! `X-Hub-Timestamp`, records what it was sent, and answers as the test's `answer` function says
//! (allow, refuse, replace, sleep, 500). A request with a bad signature is counted and answered
//! 401, so a test sees it. The server task ends when the value is dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;

/// The secret the tests' hubs sign with (`HUB_HOOK_SECRET`).
pub const HOOK_SECRET: &str = "hook-secret-for-the-tests-0123456789";

/// One request the backend received (signature checked).
#[derive(Debug, Clone)]
pub struct Seen {
    /// `/connect`, `/subscribe`, `/publish`, `/rpc`.
    pub path: String,
    pub body: Value,
    /// Lowercase header names.
    pub headers: HashMap<String, String>,
}

/// What the backend answers to one request.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Waited before answering (a slow backend).
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply {
            status: 200,
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Answer = dyn Fn(&Seen) -> Reply + Send + Sync;

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    bad_signatures: usize,
}

pub struct Backend {
    port: u16,
    log: Arc<Mutex<Log>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Backend {
    /// Starts the backend; `answer` decides each reply from what was posted.
    pub async fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(Log::default()));
        let answer: Arc<Answer> = Arc::new(answer);
        let server_log = log.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, answer) = (server_log.clone(), answer.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (log, answer) = (log.clone(), answer.clone());
                    async move { Ok::<_, Infallible>(handle(request, &log, &*answer).await) }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Backend { port, log, server }
    }

    /// The URL of `path` on this backend (for `HUB_PROXY_*_URL`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What was posted to `path` so far, in arrival order.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        let log = self.log.lock().expect("log");
        log.seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    pub fn bad_signatures(&self) -> usize {
        self.log.lock().expect("log").bad_signatures
    }

    /// Waits until `n` requests to `path` have arrived (answered or not).
    pub async fn wait_seen(&self, path: &str, n: usize) {
        let deadline = Instant::now() + super::RECV_TIMEOUT;
        while self.seen(path).len() < n {
            assert!(
                Instant::now() < deadline,
                "the backend saw {} of {n} requests to {path}",
                self.seen(path).len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`, as a backend computes it to check a hub's request.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn handle(
    request: Request<Incoming>,
    log: &Mutex<Log>,
    answer: &Answer,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let headers: HashMap<String, String> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let raw = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return respond(400, &json!({})),
    };
    let signed = headers.get("x-hub-signature").map(String::as_str);
    let stamp: Option<u64> = headers.get("x-hub-timestamp").and_then(|t| t.parse().ok());
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let fresh = stamp.is_some_and(|t| now_ms.abs_diff(t) < 30_000);
    if signed != Some(signature(HOOK_SECRET, &raw).as_str()) || !fresh {
        log.lock().expect("log").bad_signatures += 1;
        return respond(401, &json!({"error": {"message": "bad signature"}}));
    }
    let body: Value = serde_json::from_slice(&raw).expect("the hub posts JSON");
    let seen = Seen {
        path,
        body,
        headers,
    };
    let reply = answer(&seen);
    log.lock().expect("log").seen.push(seen);
    tokio::time::sleep(reply.delay).await;
    respond(reply.status, &reply.body)
}

fn respond(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}
