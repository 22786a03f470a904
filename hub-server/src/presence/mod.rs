//! Presence: who is in a room across every hub (user, name, connections), answered by any hub,
//! `presence_diff` events when a user's first connection joins a room or its last leaves, and
//! the registry of live hubs. The hub counts its own users per room ([`crate::room_users`]); the
//! [`writer`] mirrors the changes into Redis (or, standalone, only announces them), keeps this
//! hub's heartbeat, and removes the entries of hubs that died without cleaning up. A room's
//! namespace may turn presence off (its members are never counted: nothing here, nothing in
//! Redis) or its events off (counted and answered, never announced): see [`crate::namespace`].

mod diffs;
mod hash_scan;
mod heartbeat;
mod scripts;
mod webhook_events;
pub mod writer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bridge::Bridge;
use crate::hub::Hub;
use crate::protocol::Room;
use crate::redis_link::{Conn, Redis};

/// One user in a room, across every hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub connections: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomPresence {
    pub room: String,
    pub count: usize,
    pub members: Vec<Member>,
    /// More than [`LIST_MAX`] users: `members` lists some of them, `count` says how many there are.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The most members a presence answer lists. A room of 250,000 users would otherwise be one
/// reply of ~7 MB from Redis (one HGETALL held its only thread for 1.7 s in the 250k bench) and a
/// frame larger than any client's send queue.
pub const LIST_MAX: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomSummary {
    pub room: String,
    pub users: usize,
    pub connections: u64,
}

/// A live hub and its figures, as its heartbeat last wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubInfo {
    pub instance_id: String,
    pub name: String,
    pub connections: u64,
    pub rooms: u64,
    pub users: u64,
    /// Messages received from clients and frames delivered to them since the hub started.
    pub received: u64,
    pub delivered: u64,
    pub bridge: String,
    pub started_at: String,
}

#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("presence is unavailable: redis did not answer")]
pub struct PresenceUnavailable;

/// The Redis keys of presence, under the hub's prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The room's per-hub entries and its per-user totals.
    pub fn room(&self, room: &Room) -> (String, String) {
        (
            format!("{}presence:{{{room}}}", self.prefix),
            format!("{}presence-users:{{{room}}}", self.prefix),
        )
    }

    pub fn hubs(&self) -> String {
        format!("{}{{hubs}}", self.prefix)
    }

    pub fn hub(&self, instance: &str) -> String {
        format!("{}{{hubs}}:hub:{instance}", self.prefix)
    }

    pub fn hub_rooms(&self, instance: &str) -> String {
        format!("{}{{hubs}}:rooms:{instance}", self.prefix)
    }

    pub fn reaping(&self, instance: &str) -> String {
        format!("{}{{hubs}}:reaping:{instance}", self.prefix)
    }
}

/// Answers presence questions for the whole cluster (or, standalone, this hub).
#[derive(Debug, Clone)]
pub struct Presence {
    hub: Hub,
    bridge: Bridge,
    /// `None` standalone: presence is this hub's alone.
    redis: Option<Redis>,
    keys: Keys,
    started_at: Arc<str>,
}

impl Presence {
    pub fn new(hub: Hub, bridge: Bridge, redis: Option<Redis>, prefix: &str) -> Self {
        let started_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Presence {
            hub,
            bridge,
            redis,
            keys: Keys::new(prefix),
            started_at: started_at.into(),
        }
    }

    /// Without Redis: this hub is the whole cluster.
    pub(super) fn standalone(&self) -> bool {
        self.redis.is_none()
    }

    /// The shared connection for presence's requests; `None` standalone or when Redis does not
    /// answer in time.
    pub(super) async fn commands(&self) -> Option<Conn> {
        self.redis.as_ref()?.commands().await
    }

    /// This hub's figures, as its heartbeat publishes them.
    pub fn this_hub(&self) -> HubInfo {
        let hub = &self.hub;
        let c = hub.counters();
        let bridge = serde_json::to_value(self.bridge.state())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        HubInfo {
            instance_id: hub.instance_id().to_string(),
            name: hub.name().to_owned(),
            connections: hub.connections() as u64,
            rooms: hub.room_count() as u64,
            users: hub.user_count() as u64,
            received: c.received.load(std::sync::atomic::Ordering::Relaxed),
            delivered: c.delivered.load(std::sync::atomic::Ordering::Relaxed),
            bridge,
            started_at: self.started_at.to_string(),
        }
    }

    pub async fn room(&self, room: &Room) -> Result<RoomPresence, PresenceUnavailable> {
        let mut members: BTreeMap<String, Member> = BTreeMap::new();
        // The room's users when only a part of its entries was read.
        let mut total = None;
        let mut add = |user: &str, name: Option<&str>, connections: u64| {
            let m = members.entry(user.to_owned()).or_insert_with(|| Member {
                user: user.to_owned(),
                name: None,
                connections: 0,
            });
            m.connections += connections;
            if m.name.is_none() {
                m.name = name.filter(|n| !n.is_empty()).map(str::to_owned);
            }
        };
        if self.standalone() {
            for c in self.hub.room_users(room) {
                add(&c.user, c.name.as_deref(), u64::from(c.count));
            }
        } else {
            let mut conn = self.commands().await.ok_or(PresenceUnavailable)?;
            let (entries, totals) = self.keys.room(room);
            // Three requests, not a pipeline: on a Redis Cluster the registry (`{hubs}`) and the
            // room's keys (`{room}`) live in different slots. Multiplexed, they still go out
            // together.
            let (mut registry, mut sizes) = (conn.clone(), conn.clone());
            let mut zrange = redis::cmd("ZRANGE");
            zrange.arg(self.keys.hubs()).arg(0).arg(-1);
            let mut hlen = redis::cmd("HLEN");
            hlen.arg(&entries);
            let (live, fields) = futures_util::future::join(
                zrange.query_async::<Vec<String>>(&mut registry),
                hlen.query_async::<usize>(&mut sizes),
            )
            .await;
            let live: HashSet<String> =
                live.map_err(|_| PresenceUnavailable)?.into_iter().collect();
            let fields = fields.map_err(|_| PresenceUnavailable)?;
            // An entry per user per hub: past twice the list, read only a part, by pages.
            let fields = if fields > 2 * LIST_MAX {
                let users: usize = redis::cmd("HLEN")
                    .arg(&totals)
                    .query_async(&mut conn)
                    .await
                    .map_err(|_| PresenceUnavailable)?;
                total = Some(users);
                hash_scan::fields(&mut conn, &entries, None, 2 * LIST_MAX)
                    .await
                    .map_err(|_| PresenceUnavailable)?
            } else {
                redis::cmd("HGETALL")
                    .arg(&entries)
                    .query_async::<HashMap<String, String>>(&mut conn)
                    .await
                    .map_err(|_| PresenceUnavailable)?
            };
            for (field, value) in &fields {
                let Some((instance, user)) = field.split_once('|') else {
                    continue;
                };
                if !live.contains(instance) {
                    continue;
                }
                let (count, name) = value.split_once('|').unwrap_or((value, ""));
                add(user, Some(name), count.parse().unwrap_or(0));
            }
        }
        let mut members: Vec<Member> = members.into_values().collect();
        let count = total.unwrap_or(0).max(members.len());
        let truncated = count > LIST_MAX || members.len() > LIST_MAX;
        members.truncate(LIST_MAX);
        Ok(RoomPresence {
            room: room.to_string(),
            count,
            members,
            truncated,
        })
    }

    /// Every room with members on some live hub.
    pub async fn rooms(&self) -> Result<Vec<RoomSummary>, PresenceUnavailable> {
        if self.standalone() {
            let mut rooms: BTreeMap<String, RoomSummary> = BTreeMap::new();
            for c in self.hub.presence_snapshot_by_room() {
                let r = rooms
                    .entry(c.room.to_string())
                    .or_insert_with(|| RoomSummary {
                        room: c.room.to_string(),
                        users: 0,
                        connections: 0,
                    });
                r.users += 1;
                r.connections += u64::from(c.count);
            }
            return Ok(rooms.into_values().collect());
        }
        let (mut conn, live) = self.live_hubs().await?;
        let mut pipe = redis::pipe();
        for instance in &live {
            pipe.smembers(self.keys.hub_rooms(instance));
        }
        let per_hub: Vec<Vec<String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|_| PresenceUnavailable)?;
        let rooms: std::collections::BTreeSet<Room> = per_hub
            .iter()
            .flatten()
            .filter_map(|entry| writer::unlisted(entry))
            .map(|(room, _)| room)
            .collect();
        let rooms: Vec<Room> = rooms.into_iter().collect();
        // One request per room rather than one pipeline: on a Redis Cluster the rooms' totals
        // live in as many slots as there are rooms (the multiplexed connection still sends
        // them together).
        let reads = rooms.iter().map(|room| {
            let mut cmd = redis::cmd("HGETALL");
            cmd.arg(self.keys.room(room).1);
            let mut conn = conn.clone();
            async move { cmd.query_async::<HashMap<String, i64>>(&mut conn).await }
        });
        let totals: Vec<HashMap<String, i64>> = futures_util::future::join_all(reads)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|_| PresenceUnavailable)?;
        Ok(rooms
            .iter()
            .zip(totals)
            .filter(|(_, users)| !users.is_empty())
            .map(|(room, users)| RoomSummary {
                room: room.to_string(),
                users: users.len(),
                connections: users.values().map(|n| (*n).max(0) as u64).sum(),
            })
            .collect())
    }

    /// A connection, and the instance ids the registry lists (dead ones until a survivor buries
    /// them, within `hub_timeout` plus a heartbeat).
    async fn live_hubs(&self) -> Result<(Conn, Vec<String>), PresenceUnavailable> {
        let mut conn = self.commands().await.ok_or(PresenceUnavailable)?;
        let live: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.hubs())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(|_| PresenceUnavailable)?;
        Ok((conn, live))
    }

    /// Every live hub with its figures.
    pub async fn hubs(&self) -> Result<Vec<HubInfo>, PresenceUnavailable> {
        if self.standalone() {
            return Ok(vec![self.this_hub()]);
        }
        let (mut conn, live) = self.live_hubs().await?;
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = live.iter().map(|i| self.keys.hub(i)).collect();
        let infos: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(|_| PresenceUnavailable)?;
        Ok(infos
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect())
    }
}
