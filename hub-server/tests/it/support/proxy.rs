//! A TCP proxy between hubs and Redis that can hold back one kind of command: the test sees the
//! command arrive, does what must happen meanwhile, then lets it (and everything after it on that
//! connection, so order is kept) through. Replies pass untouched.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
struct Gate {
    /// Hold back commands containing `pattern` while true.
    closed: AtomicBool,
    opened: Notify,
    /// Commands held back so far.
    held: AtomicU64,
    arrived: Notify,
}

pub struct RedisProxy {
    pub port: u16,
    gate: Arc<Gate>,
    accept: JoinHandle<()>,
}

impl RedisProxy {
    /// Proxies to Redis on `redis_port`, holding back commands whose bytes contain `pattern`
    /// (e.g. `b"UNSUBSCRIBE"`) while [`RedisProxy::hold`] is on.
    pub async fn start(redis_port: u16, pattern: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let gate = Arc::new(Gate::default());
        let accept = {
            let gate = gate.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", redis_port)).await else {
                        continue;
                    };
                    tokio::spawn(pipe(client, server, gate.clone(), pattern));
                }
            })
        };
        RedisProxy { port, gate, accept }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// From now on, commands matching the pattern wait until [`RedisProxy::release`].
    pub fn hold(&self) {
        self.gate.closed.store(true, Ordering::SeqCst);
    }

    pub fn release(&self) {
        self.gate.closed.store(false, Ordering::SeqCst);
        self.gate.opened.notify_waiters();
    }

    /// Waits until a matching command is being held back.
    pub async fn wait_held(&self) {
        loop {
            let arrived = self.gate.arrived.notified();
            if self.gate.held.load(Ordering::SeqCst) > 0 {
                return;
            }
            arrived.await;
        }
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.release();
    }
}

async fn pipe(client: TcpStream, server: TcpStream, gate: Arc<Gate>, pattern: &'static [u8]) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let replies = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if gate.closed.load(Ordering::SeqCst) && chunk.windows(pattern.len()).any(|w| w == pattern)
        {
            let opened = gate.opened.notified();
            gate.held.fetch_add(1, Ordering::SeqCst);
            gate.arrived.notify_waiters();
            if gate.closed.load(Ordering::SeqCst) {
                opened.await;
            }
        }
        if server_write.write_all(chunk).await.is_err() {
            break;
        }
    }
    replies.abort();
}
