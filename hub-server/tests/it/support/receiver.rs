//! A real HTTP webhook receiver for the tests, as a backend would write one: it checks every
//! request's `X-Hub-Signature` (HMAC-SHA256 of the raw body with the hook secret) and
//! `X-Hub-Timestamp`, answers 401 to a bad one, records each event the first time its `id` comes
//! and counts the repeats. It can go down — its listener closed and its open connections cut, so
//! a hub's connection attempts are refused — and come back on the same port.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Events in the order they first arrived.
    pub events: Vec<Value>,
    ids: HashSet<String>,
    /// Events that came again (an id already seen).
    pub duplicates: usize,
    pub posts: usize,
    pub bad_signatures: usize,
    /// Answer the next good POST only after this long (having recorded its events): a hub that
    /// gives up waiting sends them again.
    pub slow_once: Option<Duration>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    secret: String,
    seen: Arc<Mutex<Seen>>,
    /// `true` tells the server and its connections to stop.
    down: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Receiver {
    /// Listening on a free loopback port.
    pub async fn start(secret: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let mut receiver = Receiver {
            addr: listener.local_addr().expect("receiver addr"),
            secret: secret.to_owned(),
            seen: Arc::default(),
            down: None,
        };
        receiver.serve(listener);
        receiver
    }

    /// The URL for `HUB_WEBHOOK_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, stopped) = watch::channel(false);
        let seen = self.seen.clone();
        let secret = self.secret.clone();
        let server = tokio::spawn(async move {
            let mut stop_accepting = stopped.clone();
            loop {
                let (socket, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                    _ = stop_accepting.wait_for(|down| *down) => return,
                };
                let (seen, secret) = (seen.clone(), secret.clone());
                let mut cut = stopped.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, seen.clone(), secret.clone()));
                    let conn =
                        http1::Builder::new().serve_connection(TokioIo::new(socket), service);
                    // Going down cuts the connection: a kept-alive one must not carry on.
                    tokio::select! {
                        _ = conn => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        self.down = Some((stop, server));
    }

    /// Closes the listener and every open connection: connections are refused from now on.
    pub async fn go_down(&mut self) {
        if let Some((stop, server)) = self.down.take() {
            let _ = stop.send(true);
            let _ = server.await;
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("receiver: rebinding {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("receiver cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// The next good POST is recorded but answered only after `delay`.
    pub fn answer_next_after(&self, delay: Duration) {
        self.seen.lock().expect("receiver lock").slow_once = Some(delay);
    }

    /// Runs `f` on what was seen so far.
    pub fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().expect("receiver lock"))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some((stop, server)) = self.down.take() {
            let _ = stop.send(true);
            server.abort();
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Seen>>,
    secret: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (signature, timestamp) = (header("x-hub-signature"), header("x-hub-timestamp"));
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(answer(StatusCode::BAD_REQUEST)),
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let fresh = timestamp
        .and_then(|t| t.parse::<u64>().ok())
        .is_some_and(|t| now_ms.abs_diff(t) < 300_000);
    let delay = {
        let mut seen = seen.lock().expect("receiver lock");
        seen.posts += 1;
        record(&mut seen, &secret, signature.as_deref(), fresh, &body)
    };
    match delay {
        Err(status) => Ok(answer(status)),
        Ok(delay) => {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            Ok(answer(StatusCode::OK))
        }
    }
}

/// Checks and records one POST; the answer's delay, or the status refusing it.
fn record(
    seen: &mut Seen,
    secret: &str,
    signature: Option<&str>,
    fresh: bool,
    body: &[u8],
) -> Result<Option<Duration>, StatusCode> {
    if !fresh || signature != Some(super::backend::signature(secret, body).as_str()) {
        seen.bad_signatures += 1;
        return Err(StatusCode::UNAUTHORIZED);
    }
    let Ok(delivery) = serde_json::from_slice::<Value>(body) else {
        return Err(StatusCode::BAD_REQUEST);
    };
    for event in delivery["events"].as_array().into_iter().flatten() {
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        if seen.ids.insert(id) {
            seen.events.push(event.clone());
        } else {
            seen.duplicates += 1;
        }
    }
    Ok(seen.slow_once.take())
}

fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    *response.status_mut() = status;
    response
}
