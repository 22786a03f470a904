//! What one worker's connection tasks share on their thread (`Rc`, `RefCell`): the worker's flags
//! and hubs, the token minter and backoff, the scratch buffer every socket is read into, each
//! connection's per-room counts (its slot), the counters the status reports and the latency
//! histograms, and the report made of them. No borrow is held across an `.await`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

use super::backoff::Backoff;
use super::control::{Sent, Status, WorkerReport};
use super::options::{ClientOpts, Rooms};
use super::schedule::Personal;
use super::token::Minter;
use super::track::{RoomCount, RoomTrack};

/// The worker's flags (the coordinator passes them; not meant to be typed).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerConfig {
    /// The hubs' WebSocket URLs (`ws://host:port/path`), in the coordinator's order.
    #[arg(long = "url", value_delimiter = ',', required = true)]
    pub urls: Vec<String>,
    /// This worker's first user number …
    #[arg(long)]
    pub first_user: u64,
    /// … and how many users (one connection each) it holds.
    #[arg(long)]
    pub users: u64,
    /// Users in the whole run (personal message `k`'s user depends on it).
    #[arg(long)]
    pub total_users: u64,
    #[command(flatten)]
    pub rooms: Rooms,
    #[command(flatten)]
    pub client: ClientOpts,
    /// The HS256 secret the hubs verify (from the environment: never on a command line).
    #[arg(long, env = "C250K_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
}

/// A hub as a connection needs it.
#[derive(Debug, Clone)]
pub struct HubAddr {
    pub addr: SocketAddr,
    /// `host:port`, for the `Host` header.
    pub host: String,
    pub path: String,
}

impl HubAddr {
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("ws://")
            .with_context(|| format!("{url}: only ws:// URLs"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = host
            .parse()
            .with_context(|| format!("{url}: the host must be an IP address and port"))?;
        Ok(HubAddr {
            addr,
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// One connection's counts, kept outside its task so the final report can read them all.
#[derive(Debug, Default)]
pub struct Slot {
    pub all: RoomTrack,
    pub personal: RoomTrack,
    /// Broadcast numbers received (bit n: broadcast n), and repeats.
    pub broadcasts: u64,
    pub broadcast_repeats: u32,
    pub misrouted: u32,
    /// Sum of the numbers of the personal messages received (wrapping).
    pub personal_numbers: u64,
}

/// Largest frame a hub sends a client (its `max_message_bytes` is 64 KiB, plus the envelope).
pub const MAX_FRAME: usize = 128 * 1024;
/// Connection-end reasons kept apart; more are counted under "other".
const MAX_REASONS: usize = 32;

pub struct Worker {
    pub cfg: WorkerConfig,
    pub hubs: Vec<HubAddr>,
    pub minter: Minter,
    pub backoff: Backoff,
    pub personal: Personal,
    /// Bounds the first connects in flight (reconnects are each client's own, as in the wild).
    pub first_connects: Semaphore,
    /// Every socket is read into this, one at a time: a connection holds no read buffer.
    pub scratch: RefCell<Vec<u8>>,
    pub slots: RefCell<Vec<Slot>>,
    pub stats: RefCell<Status>,
    pub latency_live: RefCell<Histogram<u64>>,
    pub latency_replayed: RefCell<Histogram<u64>>,
    pub ends: RefCell<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("first_user", &self.cfg.first_user)
            .field("users", &self.cfg.users)
            .finish_non_exhaustive()
    }
}

/// Latencies in µs, 1 µs to 1 h, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

impl Worker {
    pub fn new(cfg: WorkerConfig, rss_start_kib: u64) -> Result<Self> {
        if cfg.urls.is_empty() || cfg.users == 0 {
            bail!("a worker needs hubs and users");
        }
        let hubs = cfg
            .urls
            .iter()
            .map(|u| HubAddr::parse(u))
            .collect::<Result<Vec<_>>>()?;
        let minter = Minter::new(&cfg.jwt_secret, cfg.client.token_ttl);
        Ok(Worker {
            hubs,
            minter,
            backoff: Backoff {
                base: cfg.client.backoff_base,
                max: cfg.client.backoff_max,
            },
            personal: Personal::new(cfg.total_users),
            first_connects: Semaphore::new(cfg.client.connect_concurrency.max(1)),
            scratch: RefCell::new(vec![0; 2 * MAX_FRAME]),
            slots: RefCell::new((0..cfg.users).map(|_| Slot::default()).collect()),
            stats: RefCell::new(Status {
                pid: std::process::id(),
                connections: cfg.users,
                rss_start_kib,
                ..Status::default()
            }),
            latency_live: RefCell::new(histogram()),
            latency_replayed: RefCell::new(histogram()),
            ends: RefCell::new(BTreeMap::new()),
            cfg,
        })
    }

    pub fn count_end(&self, reason: String) {
        let mut ends = self.ends.borrow_mut();
        let key = if ends.len() < MAX_REASONS || ends.contains_key(&reason) {
            reason
        } else {
            "other".into()
        };
        *ends.entry(key).or_insert(0) += 1;
    }

    /// What the worker's connections got, against what was `sent`.
    pub fn report(&self, sent: &Sent) -> WorkerReport {
        let expected = self.personal.expected(
            self.cfg.first_user,
            self.cfg.users,
            sent.personal,
            &sent.personal_failed,
        );
        let mut r = WorkerReport {
            status: self.stats.borrow().clone(),
            ends: self.ends.borrow().clone(),
            ..WorkerReport::default()
        };
        for (index, (slot, want)) in self.slots.borrow().iter().zip(&expected).enumerate() {
            r.all += slot.all.count(sent.all);
            let personal = slot.personal.count(u64::from(want.count));
            if personal.lost > 0 && r.status.first_lost.is_none() {
                let user = self.cfg.first_user + index as u64;
                r.status.first_lost = Some(format!(
                    "user {user} (first on hub {}): {} of {} personal messages missing; if one, \
                     number {}",
                    user % self.hubs.len().max(1) as u64,
                    personal.lost,
                    want.count,
                    want.numbers.wrapping_sub(slot.personal_numbers)
                ));
            }
            if personal.unexpected > 0 {
                // More than was sent: the extra ones' numbers tell whether the API refused them.
                let extra = slot.personal_numbers.wrapping_sub(want.numbers);
                let one = want.refused.contains(&extra);
                let all = want.refused.iter().fold(0u64, |a, k| a.wrapping_add(*k)) == extra;
                if one || all {
                    r.refused_delivered += personal.unexpected;
                }
            }
            r.personal += personal;
            let got = u64::from(slot.broadcasts.count_ones());
            r.broadcast += RoomCount {
                expected: sent.broadcasts,
                received: got,
                lost: sent.broadcasts.saturating_sub(got),
                unexpected: got.saturating_sub(sent.broadcasts),
                duplicated: u64::from(slot.broadcast_repeats),
                ..RoomCount::default()
            };
            r.misrouted += u64::from(slot.misrouted);
        }
        let pairs = |h: &Histogram<u64>| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        r.latency_live_us = pairs(&self.latency_live.borrow());
        r.latency_replayed_us = pairs(&self.latency_replayed.borrow());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_addresses() {
        let h = HubAddr::parse("ws://127.0.0.11:9000/ws").expect("valid");
        assert_eq!(
            (h.host.as_str(), h.path.as_str()),
            ("127.0.0.11:9000", "/ws")
        );
        assert_eq!(h.addr, "127.0.0.11:9000".parse().expect("addr"));
        assert!(HubAddr::parse("wss://x:1/ws").is_err());
        assert!(
            HubAddr::parse("ws://localhost:1/ws").is_err(),
            "names are not resolved"
        );
    }
}
