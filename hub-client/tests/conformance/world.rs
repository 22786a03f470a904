//! The servers of one scenario: a Redis behind a proxy (so a restarted Redis, on another port, is
//! reached at the same address), the hubs, and a proxy per hub plus the scenario's extra ones.
//! Clients always connect through a proxy, so a restarted hub is reached again and one client's
//! connection can be broken without touching the others'.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::scenario::Setup;
use crate::support::hub::HubProcess;
use crate::support::proxy::TcpProxy;
use crate::support::redis::RedisServer;

pub struct World {
    pub secret: String,
    redis: Option<RedisServer>,
    redis_proxy: Option<TcpProxy>,
    hubs: BTreeMap<String, HubProcess>,
    /// name → (proxy, the hub it points at)
    proxies: BTreeMap<String, (TcpProxy, String)>,
}

impl World {
    pub async fn start(
        setup: &Setup,
        default_env: &BTreeMap<String, String>,
        hub_bin: &Path,
        log_dir: &Path,
    ) -> Result<World, String> {
        let secret = random_hex(32);
        let mut env: BTreeMap<String, String> = default_env.clone();
        env.extend(setup.hub_env.clone());
        match setup.auth.as_deref() {
            None | Some("off") => {}
            Some("jwt") => {
                env.insert("HUB_AUTH_MODE".into(), "jwt".into());
                env.insert("HUB_JWT_SECRETS".into(), secret.clone());
            }
            Some(other) => return Err(format!("unknown auth {other:?}")),
        }
        let mut world = World {
            secret,
            redis: None,
            redis_proxy: None,
            hubs: BTreeMap::new(),
            proxies: BTreeMap::new(),
        };
        if setup.redis {
            let redis = RedisServer::start(log_dir).await?;
            let proxy = TcpProxy::start(redis.port).await?;
            env.insert(
                "REDIS_URL".into(),
                format!("redis://127.0.0.1:{}", proxy.port),
            );
            world.redis = Some(redis);
            world.redis_proxy = Some(proxy);
        }
        let names = if setup.hubs.is_empty() {
            vec!["h1".to_owned()]
        } else {
            setup.hubs.clone()
        };
        let env: Vec<(String, String)> = env.into_iter().collect();
        for name in &names {
            let mut hub = HubProcess::new(name, hub_bin, env.clone(), log_dir);
            hub.start().await?;
            world.hubs.insert(name.clone(), hub);
        }
        let mut proxies: BTreeMap<String, String> =
            names.iter().map(|n| (n.clone(), n.clone())).collect();
        proxies.extend(setup.proxies.clone());
        for (name, hub_name) in proxies {
            let port = world.hub(&hub_name)?.port;
            world
                .proxies
                .insert(name, (TcpProxy::start(port).await?, hub_name));
        }
        Ok(world)
    }

    pub fn hub(&self, name: &str) -> Result<&HubProcess, String> {
        self.hubs
            .get(name)
            .ok_or_else(|| format!("no hub {name} in this scenario"))
    }

    pub fn proxy(&self, name: &str) -> Result<&TcpProxy, String> {
        self.proxies
            .get(name)
            .map(|(p, _)| p)
            .ok_or_else(|| format!("no proxy {name} in this scenario"))
    }

    /// The WebSocket URL a client uses to reach the hub behind proxy `via`.
    pub fn url(&self, via: &str) -> Result<String, String> {
        Ok(format!("ws://127.0.0.1:{}/ws", self.proxy(via)?.port))
    }

    pub async fn kill_hub(&mut self, name: &str) -> Result<(), String> {
        self.hubs
            .get_mut(name)
            .ok_or_else(|| format!("no hub {name}"))?
            .kill()
            .await;
        Ok(())
    }

    /// A new process for hub `name` (new port, new instance id); its proxies point at it.
    pub async fn restart_hub(&mut self, name: &str) -> Result<(), String> {
        let hub = self
            .hubs
            .get_mut(name)
            .ok_or_else(|| format!("no hub {name}"))?;
        hub.start().await?;
        let port = hub.port;
        for (proxy, hub_name) in self.proxies.values() {
            if hub_name == name {
                proxy.retarget(port);
            }
        }
        Ok(())
    }

    pub async fn kill_redis(&mut self) -> Result<(), String> {
        self.redis
            .as_mut()
            .ok_or("no redis in this scenario")?
            .kill()
            .await;
        Ok(())
    }

    /// A fresh, empty Redis behind the same proxy; waits until every running hub is ready again.
    pub async fn start_redis(&mut self) -> Result<(), String> {
        let redis = self.redis.as_mut().ok_or("no redis in this scenario")?;
        redis.restart().await?;
        if let Some(proxy) = &self.redis_proxy {
            proxy.retarget(redis.port);
        }
        for hub in self.hubs.values_mut() {
            if hub.running() {
                hub.wait_ready(std::time::Duration::from_secs(30)).await?;
            }
        }
        Ok(())
    }

    pub async fn stop(mut self) {
        for hub in self.hubs.values_mut() {
            hub.kill().await;
        }
        if let Some(redis) = self.redis.as_mut() {
            redis.kill().await;
        }
    }
}

/// `bytes` random bytes as hex (a fresh HS256 secret per scenario).
fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

pub fn log_dir(root: &Path, scenario: &str) -> PathBuf {
    root.join(scenario)
}
