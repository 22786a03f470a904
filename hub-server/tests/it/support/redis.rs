//! A real `redis-server` on a free loopback port: kill, restart on the same port, SIGSTOP/SIGCONT,
//! and the few queries the tests assert on. The process is killed when the value is dropped.
//!
//! redis-server cannot listen on port 0, so the port is one that was free a moment ago; if another
//! process took it meanwhile, our server exits with "Address already in use" and we try another
//! one. A server is ours only when its `INFO server` names our child's pid: another test's Redis
//! answering PING on that port is not taken for ours.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use super::free_port;

const INSTALL_HINT: &str = "redis-server is not installed: the integration tests start a real \
     redis-server. Install it with `apt-get install redis-server` (or `scripts/ensure-deps.sh redis-server`)";

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// redis-server's own output, read when it exits at start-up.
    log_path: PathBuf,
}

/// Why a redis-server did not come up: only a port taken by someone else is worth a retry.
struct PortTaken;

impl RedisServer {
    /// Start redis-server on a free port and wait until it answers PING.
    pub async fn start() -> Self {
        let mut server = Self {
            port: 0,
            child: None,
            log_path: std::env::temp_dir().join(format!(
                "hub-it-redis-{}.log",
                uuid::Uuid::new_v4().simple()
            )),
        };
        for _ in 0..10 {
            server.port = free_port();
            if server.spawn().await.is_ok() {
                return server;
            }
        }
        panic!("redis-server: 10 free ports in a row were taken before it could bind them");
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

    async fn spawn(&mut self) -> Result<(), PortTaken> {
        let port = self.port.to_string();
        let log = std::fs::File::create(&self.log_path).expect("create redis log file");
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
            .stdout(log.try_clone().expect("clone redis log file"))
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
                if log.contains("Address already in use") {
                    return Err(PortTaken);
                }
                panic!(
                    "redis-server on port {} exited at start-up: {status}\n{log}",
                    self.port
                );
            }
            if let Ok(mut con) = self.try_connection().await {
                let info: redis::RedisResult<String> =
                    redis::cmd("INFO").arg("server").query_async(&mut con).await;
                if info.is_ok_and(|info| info_field(&info, "process_id") == Some(pid.to_string())) {
                    return Ok(());
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} never answered INFO as our process (pid {pid})",
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

    /// Start a fresh redis-server on the same port (the hubs' REDIS_URL stays valid), waiting
    /// (bounded) while another process holds it.
    pub async fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.spawn().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server: port {} still taken by another process 30 s after our restart",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
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

    /// [`RedisServer::publish_count`] once it has stopped moving for 300 ms: the presence diffs
    /// of joins just made are published ~50 ms later, and must not be counted as what a test does
    /// next. Fails when it is still moving after 5 s.
    pub async fn settled_publish_count(&self) -> u64 {
        const STILL: Duration = Duration::from_millis(300);
        const WITHIN: Duration = Duration::from_secs(5);
        let deadline = Instant::now() + WITHIN;
        let mut counts = vec![self.publish_count().await];
        loop {
            tokio::time::sleep(STILL).await;
            let now = self.publish_count().await;
            if counts.last() == Some(&now) {
                return now;
            }
            counts.push(now);
            assert!(
                Instant::now() < deadline,
                "PUBLISH count of redis-server on port {} never still for {STILL:?} within \
                 {WITHIN:?}: {counts:?}",
                self.port
            );
        }
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
        let _ = std::fs::remove_file(&self.log_path);
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{name} {pid} failed: {status}");
}

/// `process_id:1234` in an INFO reply → `1234`.
fn info_field(info: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}:");
    info.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map(|v| v.trim().to_owned())
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
