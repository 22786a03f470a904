//! A redis-server in a network namespace of its own, reached by hubs over two separate links
//! (veth pairs), so that one link can be cut the way a real network fails: packets dropped by
//! iptables inside the namespace, not refused. Needs root, `ip` (iproute2) and `iptables`. The
//! namespace, its links, its rules and its Redis are removed when this is dropped, even after a
//! failed assertion.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct PartitionableRedis {
    ns: String,
    /// The two links: (host side, namespace side) interface names and the namespace side's address.
    links: [Link; 2],
    port: u16,
    redis: Option<Child>,
}

struct Link {
    host_if: String,
    ns_if: String,
    ns_addr: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl PartitionableRedis {
    /// An error (saying why) when this machine cannot make namespaces: not root, or no
    /// `ip`/`iptables`.
    pub async fn start() -> Result<Self, String> {
        let tag = format!("{:06x}", rand_u32() & 0xff_ffff);
        // A /30 per link in 10.231.0.0/16, picked at random so a leftover from a killed run
        // cannot collide.
        let base = (rand_u32() % 16000) as u16 * 4;
        let subnet = |link: u16| u32::from(base + 4 * link);
        let mut me = PartitionableRedis {
            ns: format!("rthub-{tag}"),
            links: [0u16, 1].map(|i| {
                let s = subnet(i);
                Link {
                    host_if: format!("rth{i}{tag}"),
                    ns_if: format!("rtn{i}{tag}"),
                    ns_addr: format!("10.231.{}.{}", s / 256 % 256, s % 256 + 2),
                }
            }),
            port: free_port(),
            redis: None,
        };
        run(&["ip", "netns", "add", &me.ns])?;
        run(&["ip", "-n", &me.ns, "link", "set", "lo", "up"])?;
        for (i, link) in me.links.iter().enumerate() {
            let s = subnet(i as u16);
            let host_addr = format!("10.231.{}.{}/30", s / 256 % 256, s % 256 + 1);
            let ns_addr = format!("{}/30", link.ns_addr);
            run(&[
                "ip",
                "link",
                "add",
                &link.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &link.ns_if,
                "netns",
                &me.ns,
            ])?;
            run(&["ip", "addr", "add", &host_addr, "dev", &link.host_if])?;
            run(&["ip", "link", "set", &link.host_if, "up"])?;
            run(&[
                "ip",
                "-n",
                &me.ns,
                "addr",
                "add",
                &ns_addr,
                "dev",
                &link.ns_if,
            ])?;
            run(&["ip", "-n", &me.ns, "link", "set", &link.ns_if, "up"])?;
        }
        let port = me.port.to_string();
        let binds = format!("{} {}", me.links[0].ns_addr, me.links[1].ns_addr);
        let child = Command::new("ip")
            .args(["netns", "exec", &me.ns, "redis-server", "--port", &port])
            .args(["--bind"])
            .args(binds.split(' '))
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server in {}: {e}", me.ns))?;
        me.redis = Some(child);
        me.wait_up().await?;
        Ok(me)
    }

    async fn wait_up(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        for link in &self.links {
            loop {
                let url = format!("redis://{}:{}", link.ns_addr, self.port);
                let ok = async {
                    let client = redis::Client::open(url).ok()?;
                    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                    redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .ok()
                };
                if tokio::time::timeout(Duration::from_secs(1), ok)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "redis in {} never answered on {}",
                        self.ns, link.ns_addr
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Redis as reached over link `i` (0 or 1).
    pub fn url(&self, i: usize) -> String {
        format!("redis://{}:{}", self.links[i].ns_addr, self.port)
    }

    /// Drops every packet of link `i`, both ways, inside the namespace.
    pub fn cut(&self, i: usize) {
        self.drop_rules(i, "-A");
    }

    /// Undoes [`PartitionableRedis::cut`].
    pub fn heal(&self, i: usize) {
        self.drop_rules(i, "-D");
    }

    /// Adds (`-A`) or deletes (`-D`) the rules dropping link `i`'s packets in and out.
    fn drop_rules(&self, i: usize, action: &str) {
        let link = &self.links[i];
        for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            let rule = [
                "ip",
                "netns",
                "exec",
                &self.ns,
                "iptables",
                action,
                chain,
                dir,
                &link.ns_if,
                "-j",
                "DROP",
            ];
            run(&rule).unwrap_or_else(|e| panic!("iptables {action}: {e}"));
        }
    }
}

impl Drop for PartitionableRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.redis.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting the namespace deletes its ends of the links, which deletes the host ends.
        let _ = run(&["ip", "netns", "del", &self.ns]);
        for link in &self.links {
            let _ = run(&["ip", "link", "del", &link.host_if]);
        }
    }
}

fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}
