//! One receiver, alone on the calling thread (a current-thread runtime: the SDK's own task runs
//! there too), taking warm-up + N messages; its CPU time and wall time over the N.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hub_client::{ClientOptions, HubClient, RoomEvent, SubscribeOptions};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::cpu;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bare tokio-tungstenite socket: frames counted, nothing parsed.
    Bare,
    /// A bare socket parsing each frame into a serde_json::Value.
    BareJson,
    /// The SDK: a subscription's Stream of messages.
    Sdk,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Bare => "bare",
            Mode::BareJson => "bare+json",
            Mode::Sdk => "sdk",
        }
    }
}

pub struct Measured {
    pub messages: u64,
    pub wall: Duration,
    pub cpu_ns: u64,
}

impl Measured {
    pub fn cpu_per_message_us(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0 / self.messages as f64
    }
}

/// Counts messages; starts the clocks after `warmup`, stops them after `warmup + n`.
struct Meter {
    warmup: u64,
    n: u64,
    seen: u64,
    start: Option<(Instant, u64)>,
}

impl Meter {
    fn new(warmup: u64, n: u64) -> Self {
        Meter {
            warmup,
            n,
            seen: 0,
            start: None,
        }
    }

    /// One message; the measure once the last one came.
    fn tick(&mut self) -> Result<Option<Measured>, String> {
        self.seen += 1;
        if self.seen == self.warmup {
            self.start = Some((Instant::now(), cpu::thread_ns()?));
        }
        if self.seen < self.warmup + self.n {
            return Ok(None);
        }
        let (t0, c0) = self.start.unwrap_or((Instant::now(), cpu::thread_ns()?));
        Ok(Some(Measured {
            messages: self.n,
            wall: t0.elapsed(),
            cpu_ns: cpu::thread_ns()? - c0,
        }))
    }
}

pub fn run(
    mode: Mode,
    url: &str,
    room: &str,
    warmup: u64,
    n: u64,
    ready: std::sync::mpsc::Sender<()>,
) -> Result<Measured, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let meter = Meter::new(warmup.max(1), n);
    rt.block_on(async move {
        match mode {
            Mode::Sdk => sdk(url, room, meter, ready).await,
            Mode::Bare | Mode::BareJson => {
                bare(url, room, mode == Mode::BareJson, meter, ready).await
            }
        }
    })
}

async fn sdk(
    url: &str,
    room: &str,
    mut meter: Meter,
    ready: std::sync::mpsc::Sender<()>,
) -> Result<Measured, String> {
    let client = HubClient::connect(url, ClientOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut sub = client
        .subscribe(room, SubscribeOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    while let Some(event) = sub.next().await {
        match event {
            RoomEvent::Joined(_) => {
                let _ = ready.send(());
            }
            RoomEvent::Message(_) => {
                if let Some(m) = meter.tick()? {
                    client.close().await;
                    return Ok(m);
                }
            }
            RoomEvent::Recovery(r) if !r.recovered => return Err(format!("lost messages: {r:?}")),
            _ => {}
        }
    }
    Err("the subscription ended".into())
}

async fn bare(
    url: &str,
    room: &str,
    parse: bool,
    mut meter: Meter,
    ready: std::sync::mpsc::Sender<()>,
) -> Result<Measured, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    let join = serde_json::json!({"type": "join", "room": room}).to_string();
    ws.send(WsMessage::text(join))
        .await
        .map_err(|e| e.to_string())?;
    let mut joined = false;
    while let Some(frame) = ws.next().await {
        let WsMessage::Text(text) = frame.map_err(|e| e.to_string())? else {
            continue;
        };
        if !joined {
            if text.contains("\"type\":\"joined\"") {
                joined = true;
                let _ = ready.send(());
            }
            continue;
        }
        if parse {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if v["type"] != "message" {
                continue;
            }
        }
        if let Some(m) = meter.tick()? {
            let _ = ws.close(None).await;
            return Ok(m);
        }
    }
    Err("the socket closed".into())
}
