//! The flood: two publisher connections on a thread and runtime of their own, sending message
//! frames to the room at a steady total rate until stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const PUBLISHERS: u64 = 2;
const TICK: Duration = Duration::from_millis(5);

pub struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Flood {
    pub fn start(url: &str, room: &str, rate: u64, size: usize) -> Result<Flood, String> {
        let frame =
            serde_json::json!({"type": "message", "room": room, "content": "x".repeat(size)})
                .to_string();
        let frame = Utf8Bytes::from(frame);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = {
            let (url, stop, sent) = (url.to_owned(), stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let mut sockets = Vec::new();
                    for _ in 0..PUBLISHERS {
                        match tokio_tungstenite::connect_async(url.as_str()).await {
                            Ok((ws, _)) => sockets.push(ws),
                            Err(e) => {
                                let _ = ready_tx.send(Err(format!("publisher: {e}")));
                                return;
                            }
                        }
                    }
                    let _ = ready_tx.send(Ok(()));
                    let per_tick = (rate as f64 * TICK.as_secs_f64() / PUBLISHERS as f64).max(1.0);
                    let mut owed = 0.0;
                    let mut ticker = tokio::time::interval(TICK);
                    while !stop.load(Ordering::Relaxed) {
                        ticker.tick().await;
                        owed += per_tick;
                        let n = owed.floor() as u64;
                        owed -= n as f64;
                        for ws in sockets.iter_mut() {
                            for _ in 0..n {
                                if ws.feed(Message::Text(frame.clone())).await.is_err() {
                                    return;
                                }
                            }
                            if ws.flush().await.is_err() {
                                return;
                            }
                        }
                        sent.fetch_add(n * PUBLISHERS, Ordering::Relaxed);
                    }
                    for mut ws in sockets {
                        let _ = ws.close(None).await;
                    }
                });
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| "the publishers did not connect".to_owned())??;
        Ok(Flood { stop, sent, thread })
    }

    /// Stops the flood; how many it sent.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.sent.load(Ordering::Relaxed)
    }
}
