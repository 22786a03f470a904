//! Brings messages in: subscribed to the broadcast channel, the control channel and the channel
//! of every room with local members. Their messages come through the bounded
//! [`inbound`](super::inbound) queue (what does not fit is shed and counted) and are handled in
//! this task, in arrival order ([`receive`](super::receive)).
//!
//! One RESP3 connection per node — on one Redis, the one connection it always had; on a cluster,
//! one per master (made before a join needs it), with sharded subscriptions (SSUBSCRIBE) each on
//! its slot's master, as the topology (`CLUSTER SLOTS`, read at every ping) says. Every node's
//! pushes go into the one inbound queue. [`Placement`] keeps which channel is confirmed on which
//! node; the work on each node runs beside the rest ([`node_pubsub`](super::node_pubsub)), one
//! task at a time per node so that its SUBSCRIBE and UNSUBSCRIBE keep their order.
//!
//! A node that is lost (its Disconnection push, an unanswered PING, a failed command) takes only
//! its own channels with it: they stop counting as subscribed (joins to their rooms wait, as on a
//! fresh connection), their gap checks restart, and they are subscribed again on the master the
//! topology names next — after a failover the promoted replica, retried with backoff until the
//! cluster has one. Channels on the live nodes are never touched. A slot that changes master (a
//! failover not seen as a lost connection, a resharding) moves its channels the same way.
//! Readiness: up once the broadcast and control channels were subscribed, then while some node
//! has made all its subscriptions (one Redis: while it has) — a dead master does not make every
//! hub unready.
//!
//! Subscriptions follow the hub's room changes one by one (never by comparing every room), and go
//! in chunks, each under `redis_timeout`, so 100k rooms subscribe without one giant command and
//! joins waiting for an early chunk go on at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval};

use super::catch_up::{CatchUp, Held, Position, Reader};
use super::channels::Target;
use super::inbound::{self, InboundReceiver, InboundSender, Incoming};
use super::link::{JoinRead, Link};
use super::node_pubsub::{Failure, NodeDone, NodeTask, Outcome, SubConn, Task};
use super::node_state::NodeState;
use super::placement::{Op, Placement};
use super::receive::{Receiver, deliver_held};
use super::sequence::SequenceTracker;
use crate::history::Stored;
use crate::hub::Hub;
use crate::redis_link::{Node, Topology};

/// Channels per SUBSCRIBE / UNSUBSCRIBE step.
const CHUNK: usize = 1000;

/// How much the inbound queue holds; see [`inbound`].
#[derive(Debug, Clone, Copy)]
pub(super) struct InboundLimits {
    pub messages: usize,
    pub bytes: usize,
}

pub(super) async fn run(
    link: Link,
    hub: Hub,
    ping_interval: Duration,
    limits: InboundLimits,
    reader: Reader,
    join_reads: mpsc::Receiver<JoinRead>,
) {
    let bridge = link.bridge.clone();
    let on_shed: inbound::OnShed = Arc::new(move || {
        let shed = bridge.counters.inbound_shed.fetch_add(1, Ordering::Relaxed) + 1;
        if shed.is_power_of_two() {
            tracing::warn!(shed, "inbound queue full: messages from redis shed");
        }
    });
    let (pushes, inbound) = inbound::queue(limits.messages, limits.bytes, on_shed);
    let sharded = link.bridge.channels.is_sharded();
    let mut ping = tokio::time::interval(ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut subscriber = Subscriber {
        tracker: match sharded {
            true => SequenceTracker::per_channel(),
            false => SequenceTracker::default(),
        },
        catch_up: CatchUp::default(),
        reader,
        floors_wanted: VecDeque::new(),
        floors_reading: false,
        placement: Placement::new(sharded),
        sharded,
        link,
        hub,
        pushes,
        numbers: 0,
        nodes: HashMap::new(),
        busy: HashSet::new(),
        synced: HashSet::new(),
        refused_until: HashMap::new(),
        topology: None,
        reading_topology: false,
        work: FuturesUnordered::new(),
        ping,
        ping_interval,
        dirty: true,
        started: false,
    };
    subscriber.want_everything();
    subscriber.run(inbound, join_reads).await
}

enum Event {
    Node(NodeDone),
    Topology(Option<Topology>),
    /// Rooms' histories read after their subscriptions were made again.
    CaughtUp(Vec<(String, Option<Stored>)>),
    /// Where newly subscribed rooms stood.
    Floors(Vec<(String, Position)>),
}

struct Subscriber {
    link: Link,
    hub: Hub,
    tracker: SequenceTracker,
    catch_up: CatchUp,
    reader: Reader,
    /// Rooms subscribed whose standing is still to be read, and whether a read is on its way.
    floors_wanted: VecDeque<String>,
    floors_reading: bool,
    sharded: bool,
    /// The inbound queue's sender, from which each connection gets its own.
    pushes: InboundSender,
    /// The last connection number given out.
    numbers: u64,
    placement: Placement,
    nodes: HashMap<Node, NodeState<SubConn>>,
    /// Nodes with a task on its way.
    busy: HashSet<Node>,
    /// Nodes that made every subscription they had to since they connected.
    synced: HashSet<Node>,
    /// Nodes that refused a subscription (their slot moved): no new one there before this.
    refused_until: HashMap<Node, Instant>,
    topology: Option<Topology>,
    reading_topology: bool,
    work: FuturesUnordered<BoxFuture<'static, Event>>,
    ping: Interval,
    ping_interval: Duration,
    /// Something changed: look for work to start.
    dirty: bool,
    /// The broadcast and control channels were subscribed once.
    started: bool,
}

impl Subscriber {
    async fn run(mut self, mut inbound: InboundReceiver, mut join_reads: mpsc::Receiver<JoinRead>) {
        self.read_topology();
        loop {
            if std::mem::take(&mut self.dirty) {
                self.start_work();
            }
            let retry = self.next_retry();
            // Redis's messages come last: under a flood they are always there, and the work
            // on the nodes (a PING, a SUBSCRIBE for a join) must still go on.
            tokio::select! {
                biased;
                _ = self.link.shutdown.wait() => return self.stop(),
                Some(event) = self.work.next(), if !self.work.is_empty() => match event {
                    Event::Node(done) => self.on_done(done),
                    Event::Topology(topology) => self.on_topology(topology),
                    Event::CaughtUp(reads) => self.on_caught_up(reads),
                    Event::Floors(floors) => self.on_floors(floors),
                },
                _ = self.hub.rooms_changed() => self.follow_room_changes(),
                Some(early) = join_reads.recv() => self.on_join_read(early),
                _ = self.ping.tick() => self.on_tick(),
                _ = tokio::time::sleep_until(retry.unwrap_or_else(Instant::now)), if retry.is_some() => {
                    self.dirty = true;
                }
                incoming = inbound.recv() => match incoming {
                    Some(Incoming::Message(msg)) => Receiver {
                        link: &self.link,
                        hub: &self.hub,
                        tracker: &mut self.tracker,
                        catch_up: &mut self.catch_up,
                    }
                    .handle(&msg),
                    Some(Incoming::Lost(number)) => self.connection_lost(number),
                    None => return self.stop(),
                },
            }
        }
    }

    /// At start: every room with local members, the broadcast and control channels.
    fn want_everything(&mut self) {
        let channels = &self.link.bridge.channels;
        self.placement.want(channels.name(&Target::Broadcast));
        self.placement.want(channels.control());
        for room in self.hub.resync_rooms() {
            self.placement.want(channels.name(&Target::Room(room)));
        }
    }

    /// Rooms that got their first local member are to be subscribed, rooms that lost their last
    /// unsubscribed. A room left stops counting as subscribed at once: a client that joins it
    /// again meanwhile waits for the SUBSCRIBE that follows, not for the old subscription on its
    /// way out.
    fn follow_room_changes(&mut self) {
        let channels = &self.link.bridge.channels;
        let mut left = Vec::new();
        for (room, present) in self.hub.take_room_changes() {
            let channel = channels.name(&Target::Room(room));
            if present {
                self.placement.want(channel);
                continue;
            }
            self.catch_up.forget(&channel);
            if self.placement.unwant(&channel) {
                left.push(channel);
            }
        }
        self.unconfirm(&left);
        self.dirty = true;
    }

    /// Starts what may start: a connection to each node with work and none, the next
    /// subscription step on each connected node that is not busy.
    fn start_work(&mut self) {
        let Some(topology) = self.topology.clone() else {
            return;
        };
        let now = Instant::now();
        // Every master gets a connection, also one without subscriptions yet: a join to a room
        // there then waits for a SUBSCRIBE, not for a connection too.
        let mut nodes = self.placement.busy_nodes(&topology);
        nodes.extend(self.nodes.keys().cloned());
        nodes.extend(topology.masters());
        for node in nodes {
            if self.busy.contains(&node) {
                continue;
            }
            let reconnect_max = self.link.redis.reconnect_max();
            let state = self
                .nodes
                .entry(node.clone())
                .or_insert_with(|| NodeState::new(reconnect_max));
            let Some(conn) = state.conn() else {
                if state.may_connect(now) {
                    state.connecting = true;
                    self.numbers += 1;
                    let pushes = self.pushes.for_connection(self.numbers);
                    self.start(node, None, Task::Connect(pushes));
                }
                continue;
            };
            if self.refused_until.get(&node).is_some_and(|at| *at > now) {
                continue;
            }
            match self.placement.next(&node, &topology, CHUNK) {
                Some(Op::Subscribe(channels)) => {
                    self.start(node, Some(conn), Task::Subscribe(channels))
                }
                Some(Op::Unsubscribe(channels)) => {
                    self.start(node, Some(conn), Task::Unsubscribe(channels))
                }
                None => {
                    if self.synced.insert(node) {
                        self.report();
                    }
                }
            }
        }
    }

    fn start(&mut self, node: Node, conn: Option<(SubConn, u64)>, task: Task) {
        self.busy.insert(node.clone());
        let work = NodeTask { node, conn, task }.run(self.link.redis.clone(), self.sharded);
        self.work.push(work.map(Event::Node).boxed());
    }

    fn on_done(&mut self, done: NodeDone) {
        let NodeDone {
            node,
            generation,
            outcome,
        } = done;
        self.busy.remove(&node);
        self.dirty = true;
        let now = Instant::now();
        let current = self
            .nodes
            .get(&node)
            .and_then(NodeState::conn)
            .map(|(_, g)| g);
        // What a connection did after it was given up counts for nothing.
        let stale = generation.is_some() && generation != current;
        match outcome {
            Outcome::Connected(Some(conn)) => {
                let reconnect_max = self.link.redis.reconnect_max();
                let state = self
                    .nodes
                    .entry(node.clone())
                    .or_insert_with(|| NodeState::new(reconnect_max));
                state.connected(conn);
                self.synced.remove(&node);
                self.report();
            }
            Outcome::Connected(None) => {
                if let Some(state) = self.nodes.get_mut(&node) {
                    state.failed(None, now);
                }
            }
            Outcome::Subscribed(channels, Ok(())) if !stale => {
                let confirmed = self.placement.subscribed(&node, channels);
                let reads = self.catch_up.subscribed(&confirmed);
                let unplaced = self.catch_up.without_position(&confirmed);
                self.link
                    .bridge
                    .subscribed
                    .send_modify(|s| s.extend(confirmed));
                self.read_history(reads);
                self.read_floors(unplaced);
                if !self.started {
                    self.report();
                }
            }
            Outcome::Subscribed(channels, result) => {
                self.placement.not_subscribed(channels);
                self.failed(&node, generation, result.err(), now);
            }
            Outcome::Unsubscribed(channels, result) => {
                for channel in &channels {
                    self.tracker.forget_channel(channel);
                    self.catch_up.forget(channel);
                }
                self.failed(&node, generation, result.err(), now);
            }
            Outcome::Pinged(result) => {
                if result.is_err() {
                    tracing::warn!(%node, "redis did not answer PING in time");
                }
                self.failed(&node, generation, result.err(), now);
            }
        }
    }

    /// A command on `node` failed: a refusal (its slot moved) holds the node's subscriptions
    /// until the next ping, when the topology has been read again; anything else loses the
    /// connection.
    fn failed(&mut self, node: &Node, generation: Option<u64>, how: Option<Failure>, now: Instant) {
        match how {
            None => {}
            Some(Failure::Refused) => {
                self.refused_until
                    .insert(node.clone(), now + self.ping_interval);
                self.read_topology();
            }
            Some(Failure::Lost) => self.node_lost(node, generation, now),
        }
    }

    /// Connection number `number` sent its Disconnection push (after everything it had queued).
    fn connection_lost(&mut self, number: u64) {
        let found = self.nodes.iter().find_map(|(node, state)| {
            let (conn, generation) = state.conn()?;
            (conn.pushes.connection() == number).then(|| (node.clone(), generation))
        });
        if let Some((node, generation)) = found {
            tracing::warn!(%node, "redis pub/sub connection lost");
            self.node_lost(&node, Some(generation), Instant::now());
        }
    }

    /// `node`'s connection is gone, and its subscriptions with it — only its own.
    fn node_lost(&mut self, node: &Node, generation: Option<u64>, now: Instant) {
        let Some(state) = self.nodes.get_mut(node) else {
            return;
        };
        if let Some((conn, g)) = state.conn()
            && generation.is_none_or(|lost| lost == g)
        {
            conn.pushes.retire();
        }
        if !state.failed(generation, now) {
            return;
        }
        self.synced.remove(node);
        let (gone, dropped) = self.placement.lost(node);
        if !gone.is_empty() {
            tracing::warn!(%node, channels = gone.len(), "subscriptions lost; subscribing them again");
        }
        self.unconfirm(&gone);
        // What was published meanwhile never reached us, by design of pub/sub: their gap checks
        // start afresh, and once subscribed again their rooms are caught up from the history.
        for channel in &gone {
            self.tracker.restart_channel(channel);
        }
        self.catch_up.lost(&gone);
        for channel in &dropped {
            self.tracker.forget_channel(channel);
            self.catch_up.forget(channel);
        }
        if self.link.redis.is_cluster() {
            self.read_topology();
        }
        self.report();
        self.dirty = true;
    }

    /// What a join's history read covered. Read before its room's channel was subscribed: the
    /// room is caught up from the history once it is (at once, when it is by now). After: a
    /// place to start from, should the subscription be lost before the room's next message.
    fn on_join_read(&mut self, join: JoinRead) {
        if !self.placement.wants(&join.channel) {
            // The join's room change may still be waiting to be seen (looked at only then: a
            // connect storm brings a join read per connection).
            self.follow_room_changes();
            if !self.placement.wants(&join.channel) {
                return;
            }
        }
        let from = Position {
            epoch: join.epoch,
            offset: join.offset,
        };
        if join.subscribed {
            return self.catch_up.joined(&join.channel, from);
        }
        let bridge = &self.link.bridge;
        let subscribed = bridge.subscribed.borrow().contains(&join.channel);
        let read = self.catch_up.joined_early(&join.channel, from, subscribed);
        self.read_history(read.into_iter().collect());
    }

    /// Reads the histories of rooms subscribed again, beside the rest of the work.
    fn read_history(&mut self, reads: Vec<(String, Position)>) {
        if reads.is_empty() {
            return;
        }
        let channels = self.link.bridge.channels.clone();
        let read = self.reader.clone().read(channels, reads);
        self.work.push(read.map(Event::CaughtUp).boxed());
    }

    /// Reads where newly subscribed rooms stand, beside the rest of the work: one batch at a
    /// time (a connect storm subscribes thousands of rooms; reading them all at once held
    /// memory the hub kept).
    fn read_floors(&mut self, channels: Vec<String>) {
        let bridge = &self.link.bridge;
        self.floors_wanted.extend(
            channels
                .into_iter()
                .filter(|c| matches!(bridge.channels.target(c), Some(Target::Room(_)))),
        );
        if self.floors_reading || self.floors_wanted.is_empty() {
            return;
        }
        let n = self.floors_wanted.len().min(CHUNK);
        let rooms: Vec<String> = self.floors_wanted.drain(..n).collect();
        self.floors_reading = true;
        let read = self.reader.clone().tops(bridge.channels.clone(), rooms);
        self.work.push(read.map(Event::Floors).boxed());
    }

    fn on_floors(&mut self, floors: Vec<(String, Position)>) {
        self.floors_reading = false;
        for (channel, at) in floors {
            // Left meanwhile: nothing of it is kept.
            if self.placement.wants(&channel) {
                self.catch_up.floor(&channel, at);
            }
        }
        self.read_floors(Vec::new());
    }

    /// Delivers what the rooms missed while their subscriptions were gone, then what was held
    /// meanwhile.
    fn on_caught_up(&mut self, reads: Vec<(String, Option<Stored>)>) {
        let bridge = &self.link.bridge;
        let mut again = Vec::new();
        let (mut rooms, mut messages, mut failed) = (0, 0, 0u64);
        for (channel, read) in reads {
            let done = self.catch_up.finish(&channel, read);
            let Some(Target::Room(room)) = bridge.channels.target(&channel) else {
                continue;
            };
            failed += u64::from(done.failed);
            let missed = own_ones_sorted_out(bridge, done.missed);
            if !missed.is_empty() {
                rooms += 1;
                messages += missed.len();
                // Fields are evaluated only when debug is on.
                tracing::debug!(
                    %room,
                    offsets = ?missed.iter().map(|h| h.frame.offset()).collect::<Vec<_>>(),
                    "caught up from the history"
                );
            }
            deliver_held(&self.hub, &room, missed);
            deliver_held(&self.hub, &room, done.held);
            again.extend(done.again.map(|from| (channel, from)));
        }
        if failed > 0 {
            bridge
                .counters
                .catch_up_failed
                .fetch_add(failed, Ordering::Relaxed);
            // One line for the batch: after an outage it is thousands of rooms.
            tracing::warn!(
                rooms = failed,
                "history not read after a lost subscription: members recover the gap from the offsets"
            );
        }
        if messages > 0 {
            bridge
                .counters
                .caught_up
                .fetch_add(messages as u64, Ordering::Relaxed);
            tracing::info!(
                rooms,
                messages,
                "delivered from the history what a lost subscription missed"
            );
        }
        self.read_history(again);
    }

    /// These channels no longer count as subscribed (joins to their rooms wait again).
    fn unconfirm(&self, channels: &[String]) {
        if channels.is_empty() {
            return;
        }
        self.link.bridge.subscribed.send_modify(|s| {
            for channel in channels {
                s.remove(channel);
            }
        });
    }

    /// Every ping interval: PING each connected node that is not busy, read the topology again
    /// (a cluster), let refused nodes try again.
    fn on_tick(&mut self) {
        self.tracker.expire();
        if self.link.redis.is_cluster() {
            self.read_topology();
        }
        let idle: Vec<(Node, (SubConn, u64))> = self
            .nodes
            .iter()
            .filter(|(node, _)| !self.busy.contains(*node))
            .filter_map(|(node, state)| state.conn().map(|c| (node.clone(), c)))
            .collect();
        for (node, conn) in idle {
            self.start(node, Some(conn), Task::Ping);
        }
        let now = Instant::now();
        self.refused_until.retain(|_, at| *at > now);
        self.dirty = true;
    }

    fn read_topology(&mut self) {
        if self.reading_topology {
            return;
        }
        self.reading_topology = true;
        let via = self
            .nodes
            .iter()
            .find_map(|(node, state)| state.conn().map(|(c, _)| (node.clone(), c.conn)));
        let known: Vec<Node> = self.nodes.keys().cloned().collect();
        let redis = self.link.redis.clone();
        let read = async move {
            let topology = redis.target().topology(via, &known, redis.timeout()).await;
            Event::Topology(topology)
        };
        self.work.push(read.boxed());
    }

    fn on_topology(&mut self, topology: Option<Topology>) {
        self.reading_topology = false;
        let Some(topology) = topology else {
            tracing::warn!("subscriber: no redis node told which master serves which slot");
            return;
        };
        if self.topology.as_ref() == Some(&topology) {
            return;
        }
        let moved = self.placement.moved(&topology);
        if !moved.is_empty() {
            tracing::warn!(
                channels = moved.len(),
                "redis cluster slots changed masters: moving their subscriptions"
            );
            self.unconfirm(&moved);
            for channel in &moved {
                self.tracker.restart_channel(channel);
            }
            self.catch_up.lost(&moved);
        }
        // Nodes that serve nothing we want any more are let go.
        let masters = topology.masters();
        let placement = &self.placement;
        let busy = &self.busy;
        self.nodes.retain(|node, state| {
            let keep = masters.contains(node) || placement.holds(node) || busy.contains(node);
            if !keep && let Some((conn, _)) = state.conn() {
                conn.pushes.retire();
            }
            keep
        });
        self.topology = Some(topology);
        self.dirty = true;
        self.report();
    }

    /// The next moment a node waiting out a backoff, or one that refused, may be tried.
    fn next_retry(&self) -> Option<Instant> {
        let now = Instant::now();
        let nodes = self.nodes.values().filter_map(NodeState::retry_at);
        nodes
            .chain(self.refused_until.values().copied())
            .filter(|at| *at > now)
            .min()
    }

    /// Connected: some node has a connection (joins then wait for their channel). Up: the
    /// broadcast and control channels have been subscribed once (a hub is not ready before), and
    /// some node has made all its subscriptions — on one Redis, the node.
    fn report(&mut self) {
        let bridge = &self.link.bridge;
        let connected = self.nodes.values().any(|s| s.conn().is_some());
        bridge.subscriber_connected.send_replace(connected);
        if !self.started {
            let channels = &bridge.channels;
            let subscribed = bridge.subscribed.borrow();
            self.started = subscribed.contains(&channels.name(&Target::Broadcast))
                && subscribed.contains(&channels.control());
        }
        let up = self.started
            && self
                .synced
                .iter()
                .any(|n| self.nodes.get(n).is_some_and(|s| s.conn().is_some()));
        super::Link::set_up(&bridge.subscriber_up, up, "subscriber");
    }

    fn stop(&mut self) {
        for (conn, _) in self.nodes.values().filter_map(NodeState::conn) {
            conn.pushes.retire();
        }
        let bridge = &self.link.bridge;
        bridge.subscriber_connected.send_replace(false);
        bridge.subscribed.send_modify(|s| s.clear());
        bridge.subscriber_up.send_replace(false);
    }
}

/// Messages a room missed, as read from its history, but those of this hub that went out late
/// already (without offset); one still on its way round is taken from
/// [`unconfirmed`](super::unconfirmed), so that its sender does not get it and it does not go
/// out late as well.
fn own_ones_sorted_out(bridge: &super::link::Shared, missed: Vec<Held>) -> Vec<Held> {
    let mut deliver = Vec::with_capacity(missed.len());
    for mut message in missed {
        let id = message.frame.message_id().unwrap_or_default();
        if bridge.unconfirmed.went_late(&id) {
            continue;
        }
        message.sender = bridge.unconfirmed.take(&id).map(|entry| entry.sender);
        deliver.push(message);
    }
    deliver
}
