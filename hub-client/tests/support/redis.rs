//! A real redis-server for a scenario: a free loopback port, no persistence (a restart is a Redis
//! that lost everything, like a crashed cache), killed at the end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::procs::Proc;

pub struct RedisServer {
    proc: Option<Proc>,
    pub port: u16,
    log_dir: PathBuf,
}

impl RedisServer {
    pub async fn start(log_dir: &Path) -> Result<RedisServer, String> {
        let mut redis = RedisServer {
            proc: None,
            port: 0,
            log_dir: log_dir.to_owned(),
        };
        redis.restart().await?;
        Ok(redis)
    }

    /// A fresh, empty Redis on a new port (a port that was free a moment ago: redis-server cannot
    /// listen on port 0, so a taken one is retried with another).
    pub async fn restart(&mut self) -> Result<(), String> {
        self.kill().await;
        for _ in 0..5 {
            let port = free_port();
            let port_arg = port.to_string();
            let mut proc = Proc::start(
                Path::new("redis-server"),
                &[
                    "--port",
                    &port_arg,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                &[],
                self.log_dir.join("redis.log"),
                None,
            )?;
            if ready(port, &mut proc).await {
                self.proc = Some(proc);
                self.port = port;
                return Ok(());
            }
            proc.kill().await;
        }
        Err(format!(
            "redis-server did not start; see {}",
            self.log_dir.join("redis.log").display()
        ))
    }

    /// SIGKILL: no goodbye to its clients, as in a crash.
    pub async fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill().await;
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

async fn ready(port: u16, proc: &mut Proc) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if !proc.running() {
            return false;
        }
        if ping(port).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await.ok()?;
        Some(buf[..n].starts_with(b"+PONG"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
