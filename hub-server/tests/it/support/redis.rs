//! A real `redis-server` on a free loopback port: kill, restart on the same port, SIGSTOP/SIGCONT,
//! and the few queries the tests assert on. The process is killed when the value is dropped.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use super::free_port;

const INSTALL_HINT: &str = "redis-server is not installed: the integration tests start a real \
     redis-server. Install it with `apt-get install redis-server` (or `scripts/ensure-deps.sh redis-server`)";

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Start redis-server on a free port and wait until it answers PING.
    pub async fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
        };
        server.spawn().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("redis-server is not running")
            .id()
    }

    async fn spawn(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut con) = self.try_connection().await {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut con).await;
                if pong.is_ok() {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "redis-server on port {} exited at start-up: {status}",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} never answered PING",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: the hubs see their connections die without a goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start a fresh redis-server on the same port (the hubs' REDIS_URL stays valid).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// SIGSTOP: Redis keeps its sockets open but answers nothing — a stalled server.
    pub fn stop(&self) {
        signal(self.pid(), "STOP");
    }

    /// SIGCONT: the stalled server resumes.
    pub fn cont(&self) {
        signal(self.pid(), "CONT");
    }

    async fn try_connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        match tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        {
            Ok(con) => con,
            Err(_) => Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect to redis timed out",
            ))),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let mut con = self
            .try_connection()
            .await
            .expect("connect to the test redis-server");
        tokio::time::timeout(Duration::from_secs(2), cmd.query_async(&mut con))
            .await
            .expect("redis query timed out")
            .expect("redis query failed")
    }

    /// How many PUBLISH commands Redis has executed since it started (INFO commandstats).
    pub async fn publish_count(&self) -> u64 {
        self.command_count("publish").await
    }

    /// How many times Redis ran `command` (lower case: `evalsha`, `xadd`, …) since it started.
    pub async fn command_count(&self, command: &str) -> u64 {
        let info: String = self.query(redis::cmd("INFO").arg("commandstats")).await;
        parse_calls(&info, command)
    }

    /// Any command, for what a test checks once (XLEN, FLUSHALL, INFO memory, …).
    pub async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        self.query(cmd).await
    }

    pub async fn exists(&self, key: &str) -> bool {
        let n: i64 = self.query(redis::cmd("EXISTS").arg(key)).await;
        n == 1
    }

    pub async fn ttl(&self, key: &str) -> i64 {
        self.query(redis::cmd("TTL").arg(key)).await
    }

    pub async fn hgetall(&self, key: &str) -> HashMap<String, String> {
        self.query(redis::cmd("HGETALL").arg(key)).await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A stopped process still dies on SIGKILL, so this also cleans up after a failed stall test.
        self.kill();
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{name} {pid} failed: {status}");
}

/// `cmdstat_publish:calls=7,usec=...` → 7; no line means no such call yet.
fn parse_calls(info: &str, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:");
    info.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|stats| stats.split(',').find_map(|kv| kv.strip_prefix("calls=")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
