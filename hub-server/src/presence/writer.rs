//! The presence writer: one task per hub. It takes the hub's room/user changes, holds a user's
//! last leave for `presence_leave_delay` (a reconnect meanwhile cancels it: nothing is said),
//! writes what remains to Redis (one script call per change, pipelined; standalone: nothing to
//! write), and announces first joins and last leaves as `presence_diff` to the room's members on
//! every hub. After each heartbeat (written by a task of its own, [`heartbeat`](super::heartbeat),
//! so that this one's long work never makes the hub look dead) it removes the entries of hubs
//! whose heartbeat stopped (one survivor does it, under a lock, so their users' leaves are
//! announced once). A write Redis did not take in time is made again. After a heartbeat Redis
//! did not answer, or one that shows Redis lost this hub's entries, it writes everything it
//! knows again (entries are absolute, so that is safe), which also rebuilds presence after a
//! Redis restarted empty.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::diffs::Diffs;
use super::hash_scan;
use super::heartbeat::{self, Beats, Found};
use super::scripts;
use super::webhook_events;
use super::{Keys, Presence};
use crate::bridge::{Bridge, Outgoing, Target};
use crate::hub::Hub;
use crate::hub::room_users::PresenceChange;
use crate::protocol::{Frame, Room};
use crate::shutdown::Shutdown;
use crate::webhooks::Webhooks;

/// Changes waiting for the writer; past this the hub asks for a resync instead.
const QUEUE: usize = 4096;
const BATCH: usize = 256;
/// Entries per write when the writer tells Redis everything again.
const SYNC_CHUNK: usize = 1000;
/// Changes kept to write again after a write Redis did not take in time; past this the writer
/// writes everything again instead.
const UNWRITTEN_MAX: usize = 4 * QUEUE;
/// How long the writer waits for more changes after the first of a batch.
const GATHER: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub leave_delay: Duration,
    pub events_max: usize,
    pub heartbeat: Duration,
    pub hub_timeout: Duration,
}

type Key = (Room, Arc<str>);

struct Writer {
    hub: Hub,
    bridge: Bridge,
    presence: Presence,
    keys: Keys,
    timing: Timing,
    me: String,
    /// Last leaves waiting out the delay: when, the name to announce, and whether to announce.
    pending: HashMap<Key, (Instant, Option<Arc<str>>, bool)>,
    /// The same leaves in the order they fall due (the delay is one constant, so that is the order
    /// they came in): finding the next, and the due ones, costs nothing per pending leave. An entry
    /// whose leave was called off stays until its time and is skipped then.
    due: VecDeque<(Instant, Key)>,
    /// Standalone: the users announced as present, per room, and how many per room.
    announced: HashSet<Key>,
    announced_rooms: HashMap<Room, usize>,
    resync: bool,
    /// Changes a write did not get into Redis in time, by room and user (the latest only), to
    /// write again after the next heartbeat. Counts are absolute, so writing one twice is safe;
    /// writing them again costs what they cost, where a resync reads every crowded room whole.
    unwritten: HashMap<Key, PresenceChange>,
    /// Redis lost this hub's entries (not buried by another hub): the next resync announces no joins.
    redis_lost: bool,
    /// While a resync rewrites what Redis lost: joins it reports are not announced.
    quiet_joins: bool,
    set_count: redis::Script,
    reap: redis::Script,
    /// Where the transitions this hub's writes observe are told (see [`webhook_events`]).
    webhooks: Webhooks,
}

pub async fn run(presence: Presence, timing: Timing, webhooks: Webhooks, shutdown: Shutdown) {
    let hub = presence.hub.clone();
    let mut rx = hub.presence_feed().subscribe(QUEUE);
    let mut w = Writer {
        bridge: presence.bridge.clone(),
        keys: presence.keys.clone(),
        me: hub.instance_id().to_string(),
        hub,
        presence,
        timing,
        pending: HashMap::new(),
        due: VecDeque::new(),
        announced: HashSet::new(),
        announced_rooms: HashMap::new(),
        resync: true,
        unwritten: HashMap::new(),
        redis_lost: false,
        quiet_joins: false,
        set_count: redis::Script::new(scripts::SET_COUNT),
        reap: redis::Script::new(scripts::REAP),
        webhooks,
    };
    let beats = Arc::new(Beats::default());
    // Standalone: no registry to beat in, and no beats to wait for.
    let beating = (!w.presence.standalone()).then(|| {
        tokio::spawn(heartbeat::run(
            w.presence.clone(),
            w.keys.clone(),
            w.me.clone(),
            timing.heartbeat,
            timing.hub_timeout,
            beats.clone(),
        ))
    });
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let next_leave = w.due.front().map(|(at, _)| *at);
        tokio::select! {
            _ = shutdown.wait() => {
                if let Some(beating) = beating {
                    beating.abort();
                    let _ = beating.await;
                }
                return w.leave_cluster().await;
            }
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return;
                }
                // What else comes within GATHER goes into the same write and the same diffs:
                // in a reconnect storm a room's members get a few frames, not one per newcomer.
                tokio::time::sleep(GATHER).await;
                while batch.len() < QUEUE
                    && let Ok(change) = rx.try_recv()
                {
                    batch.push(change);
                }
                w.changes(std::mem::take(&mut batch)).await;
            }
            _ = w.hub.presence_feed().lost() => w.resync = true,
            _ = sleep_until(next_leave) => w.due_leaves().await,
            _ = beats.next() => w.after_beat(beats.take()).await,
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Writer {
    async fn changes(&mut self, changes: Vec<PresenceChange>) {
        let mut now = Vec::new();
        for change in changes {
            let key = (change.room.clone(), change.user.clone());
            if change.count > 0 {
                // Back within the delay: the leave is never said, and neither is this join.
                self.pending.remove(&key);
                now.push(change);
            } else if self.timing.leave_delay.is_zero() {
                now.push(change);
            } else {
                let at = Instant::now() + self.timing.leave_delay;
                self.pending
                    .insert(key.clone(), (at, change.name.clone(), change.events));
                self.due.push_back((at, key));
            }
        }
        self.write_or_keep(now).await;
    }

    async fn due_leaves(&mut self) {
        let now = Instant::now();
        let mut leaves = Vec::new();
        while let Some((at, _)) = self.due.front()
            && *at <= now
        {
            let Some((at, key)) = self.due.pop_front() else {
                break;
            };
            // Only if this is still the pending leave (not called off, nor a later one).
            if self.pending.get(&key).is_some_and(|(when, ..)| *when == at)
                && let Some((_, name, events)) = self.pending.remove(&key)
            {
                leaves.push(PresenceChange {
                    room: key.0,
                    user: key.1,
                    name,
                    count: 0,
                    events,
                });
            }
        }
        self.write_or_keep(leaves).await;
    }

    /// Writes `changes`, or keeps them to write again after the next heartbeat. A change
    /// supersedes any kept one of its room and user: an older count must not be written after it.
    async fn write_or_keep(&mut self, changes: Vec<PresenceChange>) {
        for c in &changes {
            self.unwritten.remove(&(c.room.clone(), c.user.clone()));
        }
        if self.write(&changes).await {
            return;
        }
        for c in changes {
            self.unwritten.insert((c.room.clone(), c.user.clone()), c);
        }
        if self.unwritten.len() > UNWRITTEN_MAX {
            self.unwritten.clear();
            self.resync = true;
        }
    }

    /// Writes absolute counts and announces what they changed; false when Redis did not take
    /// them in time (some may have been written).
    async fn write(&mut self, changes: &[PresenceChange]) -> bool {
        if changes.is_empty() {
            return true;
        }
        if self.presence.standalone() {
            self.announce_local(changes);
            return true;
        }
        let Some(conn) = self.presence.commands().await else {
            return false;
        };
        // The connection is multiplexed: these calls go out together, like a pipeline, and
        // redis-rs loads the script again if Redis forgot it.
        let calls = changes.iter().map(|c| {
            let (entries, totals) = self.keys.room(&c.room);
            let mut call = self.set_count.key(entries);
            call.key(totals)
                .arg(&self.me)
                .arg(&*c.user)
                .arg(c.count)
                .arg(c.name.as_deref().unwrap_or_default());
            let mut conn = conn.clone();
            async move { call.invoke_async::<(i64, i64)>(&mut conn).await }
        });
        let mut rooms = redis::cmd("SADD");
        rooms.arg(self.keys.hub_rooms(&self.me));
        for c in changes.iter().filter(|c| c.count > 0) {
            rooms.arg(listed(&c.room, c.events));
        }
        let mut index = conn.clone();
        let all = async {
            if changes.iter().any(|c| c.count > 0) {
                rooms.query_async::<i64>(&mut index).await?;
            }
            futures_util::future::join_all(calls)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
        };
        match tokio::time::timeout(self.timing.heartbeat * 2, all).await {
            Ok(Ok(replies)) => {
                let mut diffs = Diffs::default();
                for (c, (event, users)) in changes.iter().zip(replies) {
                    // Joins a resync reports after Redis lost its data are no news (as below).
                    if !(event == 1 && self.quiet_joins) {
                        webhook_events::emit(&self.webhooks, c, event, users);
                    }
                    let users = usize::try_from(users).unwrap_or(0);
                    match event {
                        _ if !c.events => {}
                        1 if self.quiet_joins => {}
                        1 => diffs.push(c, true, users),
                        -1 => diffs.push(c, false, users),
                        _ => {}
                    }
                }
                for d in diffs.finish() {
                    self.announce(d.room, &d.joins, &d.leaves, d.users);
                }
                true
            }
            _ => {
                tracing::warn!(
                    changes = changes.len(),
                    "presence: redis write failed; will write again"
                );
                false
            }
        }
    }

    /// Standalone: this hub is the cluster; a user is present while it has a connection here.
    fn announce_local(&mut self, changes: &[PresenceChange]) {
        let mut diffs = Diffs::default();
        for c in changes {
            let key = (c.room.clone(), c.user.clone());
            let event = if c.count > 0 && self.announced.insert(key.clone()) {
                1
            } else if c.count == 0 && self.announced.remove(&key) {
                -1
            } else {
                continue;
            };
            // The room's users as this change left them (webhooks: did it fill or empty it?).
            let room_users = self.announced_rooms.entry(c.room.clone()).or_default();
            *room_users = room_users.saturating_add_signed(event);
            let after = *room_users as i64;
            if after == 0 {
                self.announced_rooms.remove(&c.room);
            }
            webhook_events::emit(&self.webhooks, c, event as i64, after);
            if c.events {
                diffs.push(c, event == 1, self.hub.room_users(&c.room).len());
            }
        }
        for d in diffs.finish() {
            self.announce(d.room, &d.joins, &d.leaves, d.users);
        }
    }

    /// `presence_diff` to the room's members here and on every other hub.
    fn announce(
        &self,
        room: &Room,
        joins: &[&PresenceChange],
        leaves: &[&PresenceChange],
        users: usize,
    ) {
        if users > self.timing.events_max {
            return;
        }
        let who = |c: &&PresenceChange| (c.user.to_string(), c.name.as_deref().map(str::to_owned));
        let joins: Vec<_> = joins.iter().map(who).collect();
        let leaves: Vec<_> = leaves.iter().map(who).collect();
        let frame = Frame::presence_diff(room, &joins, &leaves);
        self.hub.deliver(room, &frame, None);
        let out = Outgoing {
            target: Target::Room(room.clone()),
            id: uuid::Uuid::new_v4().to_string(),
            frame,
            sender: "presence".into(),
            delivered_locally: true,
            store: false,
            ack: None,
        };
        let _ = self.bridge.publish(out);
    }

    /// After a heartbeat: a resync when one is due (a beat failed, Redis did not know this hub,
    /// or a change was dropped), else the changes kept from writes that failed, then the dead
    /// hubs' cleanup. A write that failed alone asks for no resync: its changes are written
    /// again (in a reconnect storm, resyncs that each read a 250,000-entry room whole were most
    /// of Redis's work).
    async fn after_beat(&mut self, found: Found) {
        if found.failed {
            self.resync = true;
        }
        let Some(mut conn) = self.presence.commands().await else {
            self.resync = true;
            return;
        };
        if found.unknown {
            // Not in the registry: Redis lost what this hub wrote (a restart, FLUSHALL) even if
            // no request failed, since the connection came back on its own — or another hub took
            // this one for dead and buried it (its lock says so for a minute).
            self.resync = true;
            let buried: Result<bool, _> = redis::cmd("EXISTS")
                .arg(self.keys.reaping(&self.me))
                .query_async(&mut conn)
                .await;
            // Lost, not buried: nobody saw these users leave, so their coming back is no news
            // to anyone (100k rooms re-announced filled the bridge's queue).
            self.redis_lost = matches!(buried, Ok(false));
        } else if found.failed && found.dead.is_empty() {
            // Redis did not answer the beat: what is due waits for a beat that it answers.
            return;
        }
        if self.resync && self.sync(&mut conn, false).await {
            self.resync = false;
            self.redis_lost = false;
            // The sync wrote every count as it stands now.
            self.unwritten.clear();
        }
        if !self.resync && !self.unwritten.is_empty() {
            let kept: Vec<PresenceChange> = self.unwritten.drain().map(|(_, c)| c).collect();
            for chunk in kept.chunks(SYNC_CHUNK) {
                self.write_or_keep(chunk.to_vec()).await;
            }
        }
        for instance in found.dead {
            self.bury(&mut conn, &instance).await;
        }
    }

    /// Makes Redis say exactly what this hub knows: its counts as they are, and none of its
    /// entries it no longer has (`gone`: as if it had none, when it leaves the cluster).
    async fn sync(&mut self, conn: &mut crate::redis_link::Conn, gone: bool) -> bool {
        let local = if gone {
            Vec::new()
        } else {
            self.hub.presence_snapshot_by_room()
        };
        let mine: HashSet<Key> = local
            .iter()
            .map(|c| (c.room.clone(), c.user.clone()))
            .chain(self.pending.keys().filter(|_| !gone).cloned())
            .collect();
        let listed: Result<Vec<String>, _> = redis::cmd("SMEMBERS")
            .arg(self.keys.hub_rooms(&self.me))
            .query_async(conn)
            .await;
        let Ok(listed) = listed else { return false };
        let prefix = format!("{}|", self.me);
        let mut stale = Vec::new();
        for (room, events) in listed.iter().filter_map(|r| unlisted(r)) {
            // This hub's fields only, in pages: never the whole hash of a crowded room.
            let own = hash_scan::starting_with(&prefix);
            let key = self.keys.room(&room).0;
            let Ok(entries) = hash_scan::fields(conn, &key, Some(&own), usize::MAX).await else {
                return false;
            };
            for (field, value) in entries {
                let Some(user) = field.strip_prefix(&prefix) else {
                    continue;
                };
                let user: Arc<str> = user.into();
                if !mine.contains(&(room.clone(), user.clone())) {
                    let name = value.split_once('|').map(|(_, n)| Arc::from(n));
                    stale.push(PresenceChange {
                        room: room.clone(),
                        user,
                        name,
                        count: 0,
                        events,
                    });
                }
            }
        }
        let before = self.resync;
        self.resync = false;
        // In chunks, each under its own timeout: 100k entries in one write would time out as a
        // whole and start again from nothing (the 100k-rooms bench saw 2.7-12.7 s and 600 MiB).
        let mut all = local.into_iter().chain(stale).peekable();
        self.quiet_joins = self.redis_lost;
        while all.peek().is_some() && !self.resync {
            let chunk: Vec<PresenceChange> = all.by_ref().take(SYNC_CHUNK).collect();
            if !self.write(&chunk).await {
                self.resync = true;
            }
        }
        self.quiet_joins = false;
        let ok = !self.resync;
        self.resync = before;
        ok
    }

    /// Removes a dead hub's entries, once across the cluster, announcing its users' leaves.
    async fn bury(&mut self, conn: &mut crate::redis_link::Conn, dead: &str) {
        let locked: Result<Option<String>, _> = redis::cmd("SET")
            .arg(self.keys.reaping(dead))
            .arg(&self.me)
            .arg("NX")
            .arg("PX")
            .arg(60_000)
            .query_async(conn)
            .await;
        if !matches!(locked, Ok(Some(_))) {
            return;
        }
        let rooms: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.hub_rooms(dead))
            .query_async(conn)
            .await
            .unwrap_or_default();
        tracing::info!(
            hub = dead,
            rooms = rooms.len(),
            "a hub stopped beating: removing its presence"
        );
        for (room, events) in rooms.iter().filter_map(|r| unlisted(r)) {
            let (entries, totals) = self.keys.room(&room);
            let mut cursor = "0".to_owned();
            loop {
                let mut call = self.reap.key(&entries);
                call.key(&totals).arg(dead).arg(&cursor);
                let Ok((left, users, next)) =
                    call.invoke_async::<(Vec<String>, i64, String)>(conn).await
                else {
                    return;
                };
                self.reaped(&room, events, &left, users);
                if next == "0" {
                    break;
                }
                cursor = next;
            }
        }
        let _: Result<(), _> = redis::pipe()
            .del(self.keys.hub_rooms(dead))
            .del(self.keys.hub(dead))
            .zrem(self.keys.hubs(), dead)
            .query_async(conn)
            .await;
    }

    /// One page of a dead hub's entries of `room` removed: its users left with no connection
    /// anywhere (`left`: user, name, …) are announced.
    fn reaped(&mut self, room: &Room, events: bool, left: &[String], users: i64) {
        let leaves: Vec<PresenceChange> = left
            .chunks(2)
            .map(|pair| PresenceChange {
                room: room.clone(),
                user: pair[0].as_str().into(),
                name: pair
                    .get(1)
                    .filter(|n| !n.is_empty())
                    .map(|n| n.as_str().into()),
                count: 0,
                events,
            })
            .collect();
        webhook_events::emit_reaped(&self.webhooks, &leaves, users);
        if events && !leaves.is_empty() {
            let refs: Vec<&PresenceChange> = leaves.iter().collect();
            self.announce(room, &[], &refs, usize::try_from(users).unwrap_or(0));
        }
    }

    /// Shutdown: this hub's users leave now (no delay: nobody will come back here), and the hub
    /// leaves the registry at once instead of being found dead later.
    async fn leave_cluster(mut self) {
        self.pending.clear();
        self.due.clear();
        if self.presence.standalone() {
            return;
        }
        let Some(mut conn) = self.presence.commands().await else {
            return;
        };
        self.sync(&mut conn, true).await;
        let _: Result<(), _> = redis::pipe()
            .del(self.keys.hub_rooms(&self.me))
            .del(self.keys.hub(&self.me))
            .zrem(self.keys.hubs(), &self.me)
            .query_async(&mut conn)
            .await;
    }
}

/// Marks a room of this hub's index (`{hubs}:rooms:<instance>`) whose namespace sends no
/// `presence_diff`: a hub burying a dead one knows from the index alone whether to announce its
/// users' leaves. `!` is no room-name character.
const QUIET: char = '!';

/// How `room` is listed in the index.
fn listed(room: &Room, events: bool) -> String {
    match events {
        true => room.to_string(),
        false => format!("{QUIET}{room}"),
    }
}

/// A room of the index, and whether its changes are announced; `None` for what is not a room.
pub(super) fn unlisted(entry: &str) -> Option<(Room, bool)> {
    match entry.strip_prefix(QUIET) {
        Some(room) => Room::parse(room).ok().map(|r| (r, false)),
        None => Room::parse(entry).ok().map(|r| (r, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_says_which_rooms_are_quiet() {
        let room = Room::parse("live:1").expect("room");
        assert_eq!(listed(&room, true), "live:1");
        assert_eq!(listed(&room, false), "!live:1");
        assert_eq!(unlisted("live:1"), Some((room.clone(), true)));
        assert_eq!(unlisted("!live:1"), Some((room, false)));
        assert_eq!(unlisted("!!x"), None);
        assert_eq!(unlisted("a b"), None);
    }
}
