//! A test's servers: a redis-server and hubs bridged through it (each with its server API), logs
//! in a directory of the test's own, everything killed when the value is dropped.

use std::path::PathBuf;

use crate::support::bins;
use crate::support::hub::{Api, HubProcess};
use crate::support::redis::RedisServer;

pub struct Env {
    pub dir: PathBuf,
    /// Held for its life: it dies with the value.
    _redis: RedisServer,
    pub hubs: Vec<HubProcess>,
}

impl Env {
    /// Redis and `hubs` hubs (`h1`, `h2`, …) with `extra` environment.
    pub async fn start(test: &str, hubs: usize, extra: &[(&str, &str)]) -> Env {
        bins::check_redis().expect("redis-server");
        let bin = bins::hub_server().expect("hub-server binary");
        let dir = std::env::temp_dir().join(format!("hub-client-it-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("log dir");
        let redis = RedisServer::start(&dir).await.expect("redis");
        let mut env = vec![(
            "REDIS_URL".to_owned(),
            format!("redis://127.0.0.1:{}", redis.port),
        )];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut list = Vec::new();
        for i in 1..=hubs {
            let mut hub = HubProcess::new(&format!("h{i}"), &bin, env.clone(), &dir);
            hub.start().await.expect("hub starts");
            list.push(hub);
        }
        Env {
            dir,
            _redis: redis,
            hubs: list,
        }
    }

    pub fn ws_url(&self, hub: usize) -> String {
        format!("ws://127.0.0.1:{}/ws", self.hubs[hub].port)
    }

    pub fn api_url(&self, hub: usize) -> String {
        format!("http://127.0.0.1:{}", self.hubs[hub].api_port)
    }

    pub fn api(&self, hub: usize) -> Api {
        self.hubs[hub].api()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // The processes die with their handles (kill on drop); the logs go unless the test failed.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs of the servers: {}", self.dir.display());
        }
    }
}
