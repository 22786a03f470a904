//! A TCP proxy between clients and a server (a hub, Redis) that breaks connections the way
//! networks do: cut every open one (a reset, both sides), refuse new ones, stall open ones
//! (bytes stop one way or both, nothing closes: a half-open connection), or point at a restarted
//! server on another port.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One proxied connection's controls.
#[derive(Default)]
struct Pair {
    cut: Notify,
    /// What the client sends is dropped.
    stall_up: AtomicBool,
    /// What the server sends is dropped.
    stall_down: AtomicBool,
}

#[derive(Default)]
struct Shared {
    target: AtomicU16,
    down: AtomicBool,
    next: AtomicU64,
    pairs: Mutex<HashMap<u64, Arc<Pair>>>,
}

impl Shared {
    fn pairs(&self) -> Vec<Arc<Pair>> {
        self.pairs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

pub struct TcpProxy {
    pub port: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a loopback port the kernel picks, forwarding to `target_port`.
    pub async fn start(target_port: u16) -> Result<TcpProxy, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("proxy bind: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let shared = Arc::new(Shared::default());
        shared.target.store(target_port, Ordering::SeqCst);
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(TcpProxy {
            port,
            shared,
            accept,
        })
    }

    /// Where new connections go from now on (a restarted server); open ones are left alone.
    pub fn retarget(&self, port: u16) {
        self.shared.target.store(port, Ordering::SeqCst);
    }

    /// Resets every open connection, both sides (what a crashed middlebox does).
    pub fn cut(&self) {
        for pair in self.shared.pairs() {
            pair.cut.notify_one();
        }
    }

    /// New connections are reset at once (the server unreachable) until [`TcpProxy::up`].
    pub fn down(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
    }

    pub fn up(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
    }

    /// Open connections stop carrying bytes `direction` (`both`, `to_server`, `to_client`), and
    /// nothing is closed. New connections work.
    pub fn stall(&self, direction: &str) -> Result<(), String> {
        let (up, down) = match direction {
            "both" => (true, true),
            "to_server" => (true, false),
            "to_client" => (false, true),
            other => return Err(format!("bad stall direction {other:?}")),
        };
        for pair in self.shared.pairs() {
            if up {
                pair.stall_up.store(true, Ordering::SeqCst);
            }
            if down {
                pair.stall_down.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        if shared.down.load(Ordering::SeqCst) {
            reset(&client);
            continue;
        }
        let target = shared.target.load(Ordering::SeqCst);
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)).await else {
                reset(&client);
                return;
            };
            let id = shared.next.fetch_add(1, Ordering::SeqCst);
            let pair = Arc::new(Pair::default());
            shared
                .pairs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, pair.clone());
            relay(client, upstream, &pair).await;
            shared
                .pairs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
    }
}

/// Drops the socket with a reset (SO_LINGER 0) rather than a FIN.
fn reset(stream: &TcpStream) {
    let _ = socket2_linger_zero(stream);
}

#[allow(deprecated)] // set_linger is what a reset needs; its replacement is not in every tokio 1.x
fn socket2_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_linger(Some(Duration::ZERO))
}

/// Carries bytes both ways until both sides are done, a side fails, or the pair is cut (then
/// both sides are reset).
async fn relay(mut client: TcpStream, mut upstream: TcpStream, pair: &Pair) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let clean = {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let up = carry(&mut cr, &mut uw, &pair.stall_up);
        let down = carry(&mut ur, &mut cw, &pair.stall_down);
        tokio::select! {
            () = pair.cut.notified() => false,
            done = async { tokio::try_join!(up, down) } => done.is_ok(),
        }
    };
    if !clean {
        reset(&client);
        reset(&upstream);
    }
}

/// One direction: bytes read are written on, unless stalled (then dropped, and the end of the
/// stream is not passed on either: a stalled connection stays open, silently, until cut).
async fn carry(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    stalled: &AtomicBool,
) -> Result<(), ()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(n) => n,
            Err(_) if stalled.load(Ordering::SeqCst) => return Ok(()),
            Err(_) => return Err(()),
        };
        if stalled.load(Ordering::SeqCst) {
            if n == 0 {
                return Ok(());
            }
            continue;
        }
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return Err(());
        }
    }
}
