//! A real Redis Cluster on loopback: six `redis-server --cluster-enabled yes` (three masters, three
//! replicas, `cluster-node-timeout` 2 s so a failover takes seconds), joined by `redis-cli --cluster
//! create`. Every node is SIGKILLed and its directory removed when the value is dropped, on
//! failure too.
//!
//! A node listens on its port and on port + 10000 (the cluster bus), so ports are picked where
//! both are free a moment before, below 55535; a node that finds its port taken meanwhile is
//! started again on others.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NODE_TIMEOUT_MS: &str = "2000";

pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

struct Node {
    port: u16,
    child: Option<Child>,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port whose cluster-bus twin (port + 10000) was free too, a moment ago.
fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let port = 20000 + (rand::random::<u16>() % 30000);
        let ok = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok();
        if ok {
            return port;
        }
    }
    panic!("no free port pair for a cluster node in 200 tries");
}

impl RedisCluster {
    /// Six nodes, three masters with a replica each, every slot served, replicas in sync.
    pub async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("hub-it-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..6 {
            let node = cluster.spawn_node().await;
            cluster.nodes.push(node);
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli (apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy(Duration::from_secs(30)).await;
        cluster
    }

    async fn spawn_node(&self) -> Node {
        for _ in 0..10 {
            let port = free_port_pair();
            let log = self.dir.join(format!("{port}.log"));
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", NODE_TIMEOUT_MS])
                // A replica always takes over, however long its master was gone.
                .args(["--cluster-replica-validity-factor", "0"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--dir", &self.dir.to_string_lossy()])
                .args(["--logfile", &log.to_string_lossy()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (apt-get install redis-server)");
            let mut node = Node {
                port,
                child: Some(child),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(Ok(Some(_))) = node.child.as_mut().map(Child::try_wait) {
                    node.child = None;
                    break; // port taken meanwhile: another pair
                }
                if query::<String>(port, &redis::cmd("PING")).await.is_ok() {
                    return node;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster node {port} never answered"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("cluster node: 10 port pairs taken before it could bind them");
    }

    /// Every live node says `cluster_state:ok`, all 16384 slots are served, and every live
    /// replica's link to its master is up.
    pub async fn wait_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.healthy().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis cluster not healthy within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn healthy(&self) -> bool {
        for port in self.live_ports() {
            let Ok(info) = query::<String>(port, redis::cmd("CLUSTER").arg("INFO")).await else {
                return false;
            };
            if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                return false;
            }
            let Ok(repl) = query::<String>(port, redis::cmd("INFO").arg("replication")).await
            else {
                return false;
            };
            if repl.contains("role:slave") && !repl.contains("master_link_status:up") {
                return false;
            }
        }
        true
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// `REDIS_CLUSTER_NODES` for a hub: every node (the hub finds the topology itself).
    pub fn nodes_env(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The masters' ports and their slot ranges, by `CLUSTER SLOTS` from a live node.
    pub async fn masters(&self) -> HashMap<u16, Vec<(u16, u16)>> {
        let port = self.live_ports()[0];
        let slots: Vec<redis::Value> = query(port, redis::cmd("CLUSTER").arg("SLOTS"))
            .await
            .expect("CLUSTER SLOTS");
        let mut masters: HashMap<u16, Vec<(u16, u16)>> = HashMap::new();
        for range in slots {
            let redis::Value::Array(parts) = range else {
                continue;
            };
            let (Some(redis::Value::Int(from)), Some(redis::Value::Int(to))) =
                (parts.first(), parts.get(1))
            else {
                continue;
            };
            let Some(redis::Value::Array(master)) = parts.get(2) else {
                continue;
            };
            let Some(redis::Value::Int(master_port)) = master.get(1) else {
                continue;
            };
            masters
                .entry(*master_port as u16)
                .or_default()
                .push((*from as u16, *to as u16));
        }
        masters
    }

    /// `CLUSTER KEYSLOT` of a key or channel name, asked of the cluster itself.
    pub async fn keyslot(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        let slot: i64 = query(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await
            .expect("CLUSTER KEYSLOT");
        slot as u16
    }

    /// Any command on one node.
    pub async fn on<T: redis::FromRedisValue>(&self, port: u16, cmd: &redis::Cmd) -> T {
        query(port, cmd)
            .await
            .unwrap_or_else(|e| panic!("node {port}: {e}"))
    }

    /// How often `command` (lower case) ran on node `port` since its last CONFIG RESETSTAT.
    pub async fn calls(&self, port: u16, command: &str) -> u64 {
        let info: String = self.on(port, redis::cmd("INFO").arg("commandstats")).await;
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// SIGKILL the node on `port`: no goodbye to clients or to the cluster.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let timeout = Duration::from_secs(2);
    let work = async {
        let mut con = client.get_multiplexed_async_connection().await?;
        cmd.query_async(&mut con).await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "redis query timed out",
        ))),
    }
}
