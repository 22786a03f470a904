//! Sends local messages to Redis: one command per client message, pipelined, in the order the hub
//! produced them — a PUBLISH, or for a room message with history on, one EVALSHA of the append
//! script (store and publish in one atomic step) whose reply carries the offset for the sender's
//! ack. A batch re-sent after a failure stores nothing twice (receivers drop duplicate publishes
//! by `seq`, the append script duplicate appends by origin and `seq`).
//!
//! Messages wait in [`Lanes`], one per hash slot (one in all on one Redis): a lane's messages go
//! in order, one batch at a time, each batch to its slot's master over a connection of that node
//! alone ([`attempt`]), all nodes' batches at once. A node that fails holds back only the lanes
//! it serves: their messages (and those that come after them) wait, bounded with everything else
//! by `bridge_buffer`, and are retried with backoff on the master the cluster names then — after
//! a failover, the promoted replica — once the other hubs listen there again; the other masters'
//! lanes never pause. On one Redis its failure is an outage, as before: the publisher is down,
//! reconnects with backoff, waits for the other hubs and flushes in order.
//!
//! Readiness: the publisher is up while some master it needs answers. A cluster with one master
//! down still carries the rooms of the others, and every hub sees the same cluster: a 503 from
//! all of them would take every room down with the dead master's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval};

use super::attempt::{Attempt, Ctx, Done, Outcome, Via, Work};
use super::channel_counts::ChannelCounts;
use super::channels::{Channels, Target};
use super::envelope::{Header, encode, encode_head};
use super::lanes::{Lanes, Sent};
use super::link::Link;
use super::node_state::NodeState;
use super::outgoing::Outgoing;
use super::pipeline::{Batch, Item, is_noscript, must_retry, subscribers_moved};
use crate::error::ProtocolError;
use crate::history::{AppendArgs, Appender, unix_ms};
use crate::redis_link::{Node, Topology, key_slot};

/// Most commands in one pipeline: large enough to amortize round trips under load, small enough
/// that one slow batch does not hold the rest for long.
const MAX_BATCH: usize = 512;

pub(super) async fn run(
    link: Link,
    rx: mpsc::Receiver<Outgoing>,
    check_interval: Duration,
    appender: Appender,
) {
    let channels = link.bridge.channels.clone();
    let broadcast = channels.name(&Target::Broadcast);
    let mut check = tokio::time::interval(check_interval);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Publisher {
        broadcast_slot: slot_of(&channels, &broadcast),
        lanes: Lanes::new(link.redis.reconnect_max()),
        ctx: Arc::new(Ctx {
            link,
            appender,
            sharded: channels.is_sharded(),
            broadcast,
        }),
        channels,
        rx,
        counts: ChannelCounts::default(),
        seq: 0,
        incoming: Vec::with_capacity(MAX_BATCH),
        hubs_listening: 0,
        nodes: HashMap::new(),
        checking: HashSet::new(),
        sending: HashMap::new(),
        topology: None,
        reading_topology: false,
        work: FuturesUnordered::new(),
        check,
        stopping: false,
        retry_warned: None,
    }
    .run()
    .await
}

fn slot_of(channels: &Channels, channel: &str) -> u16 {
    if channels.is_sharded() {
        key_slot(channel)
    } else {
        0
    }
}

/// What the publisher waits for besides its queue.
enum Event {
    Done(Done),
    Topology(Option<Topology>),
}

struct Publisher {
    ctx: Arc<Ctx>,
    rx: mpsc::Receiver<Outgoing>,
    channels: Channels,
    broadcast_slot: u16,
    /// Subscribers of the broadcast channel when last asked: the hubs listening, awaited again
    /// after an outage.
    hubs_listening: i64,
    counts: ChannelCounts,
    /// This hub's publishes over all channels: receivers drop what they saw (a re-sent batch).
    seq: u64,
    incoming: Vec<Outgoing>,
    lanes: Lanes,
    nodes: HashMap<Node, NodeState<MultiplexedConnection>>,
    /// Nodes with a check on its way.
    checking: HashSet<Node>,
    /// Batches on their way, per node: a node busy with one is not checked besides (the batch
    /// times out if the node is dead; a check queued behind a long batch on a loaded Redis
    /// timed out instead, and the connection was dropped with everything on it).
    sending: HashMap<Node, usize>,
    /// Which master serves each slot; `None` until a node of the cluster told us.
    topology: Option<Topology>,
    reading_topology: bool,
    work: FuturesUnordered<futures_util::future::BoxFuture<'static, Event>>,
    /// Notice a dead or stalled node before a message needs it; on a cluster, read the topology.
    check: Interval,
    stopping: bool,
    /// When "redis asked for a retry" was last logged.
    retry_warned: Option<Instant>,
}

impl Publisher {
    async fn run(mut self) {
        self.read_topology();
        loop {
            self.pump();
            if self.stopping && self.work.is_empty() && self.rx.is_empty() {
                // Nothing on its way and nothing can go without waiting: what is left stays unsent.
                return self.report_unsent();
            }
            let retry = self.next_retry();
            tokio::select! {
                n = self.rx.recv_many(&mut self.incoming, MAX_BATCH), if !self.rx.is_closed() || !self.rx.is_empty() => {
                    if n > 0 {
                        self.frame_batch();
                    }
                }
                Some(event) = self.work.next(), if !self.work.is_empty() => match event {
                    Event::Done(done) => self.on_done(done),
                    Event::Topology(topology) => self.on_topology(topology),
                },
                _ = tokio::time::sleep_until(retry.unwrap_or_else(Instant::now)), if retry.is_some() => {}
                _ = self.check.tick(), if !self.stopping => self.on_tick(),
                _ = self.ctx.link.shutdown.wait(), if !self.stopping => self.stopping = true,
            }
        }
    }

    /// Turns what came in into commands — the envelope around each frame, and a PUBLISH or an
    /// append — in their slots' lanes.
    fn frame_batch(&mut self) {
        self.counts.next_batch();
        // One clock reading per batch: the append script only needs it to within its TTL refresh
        // interval (history_ttl / 16).
        let now = unix_ms();
        let link = &self.ctx.link;
        let origin = link.instance_id.to_string();
        for out in self.incoming.drain(..) {
            let channel = self.channels.name(&out.target);
            self.seq += 1;
            let header = Header {
                origin: link.instance_id,
                seq: self.seq,
                n: self.counts.published(&channel),
                local: out.delivered_locally,
                id: &out.id,
            };
            let command = match (&out.target, out.store) {
                (Target::Room(room), true) => {
                    let head = encode_head(&header);
                    let args = AppendArgs {
                        channel: &channel,
                        head: &head,
                        origin: &origin,
                        seq: self.seq,
                        now_ms: &now,
                    };
                    self.ctx.appender.command(room, &out.frame, &args)
                }
                _ => {
                    let mut cmd = redis::cmd(self.channels.publish_command());
                    cmd.arg(&channel).arg(encode(&header, &out.frame));
                    cmd
                }
            };
            self.lanes.push(Item {
                slot: slot_of(&self.channels, &channel),
                channel,
                command,
                stored: out.store,
                ack: out.ack,
            });
        }
    }

    /// Starts what may start now: each ready lane's messages towards its slot's master, and a
    /// connection to each master that has none (after its backoff).
    fn pump(&mut self) {
        let Some(topology) = self.topology.clone() else {
            return;
        };
        let now = Instant::now();
        let mut by_node: HashMap<Node, Vec<u16>> = HashMap::new();
        for slot in self.lanes.ready(now) {
            match topology.master(slot) {
                Some(node) => by_node.entry(node.clone()).or_default().push(slot),
                // No master (a failover under way): its messages wait out an outage.
                None => {
                    self.lanes.mark_waited(slot);
                    self.read_topology();
                }
            }
        }
        let count_hubs_on = topology.master(self.broadcast_slot).cloned();
        for node in topology.masters() {
            let slots = by_node.remove(&node).unwrap_or_default();
            let count_hubs = count_hubs_on.as_ref() == Some(&node);
            self.pump_node(node, slots, count_hubs, now);
        }
    }

    fn pump_node(&mut self, node: Node, slots: Vec<u16>, count_hubs: bool, now: Instant) {
        let reconnect_max = self.ctx.link.redis.reconnect_max();
        let state = self
            .nodes
            .entry(node.clone())
            .or_insert_with(|| NodeState::new(reconnect_max));
        // Messages for a node in an outage wait for the other hubs before they go.
        let node_down = state.in_outage();
        let Some(conn) = state.conn() else {
            if !state.may_connect(now) || (slots.is_empty() && self.stopping) {
                // Connecting, backing off, or no reason to connect. Messages for a node that is
                // down wait out an outage, wherever they go once it is over.
                if node_down {
                    slots.iter().for_each(|s| self.lanes.mark_waited(*s));
                }
                return;
            }
            state.connecting = true;
            if slots.is_empty() {
                // Keep a connection to every master, as one Redis always had: the script is
                // loaded and the node known good before a message needs it.
                return self.start_check(node, None, count_hubs);
            }
            // One batch makes the connection; the rest follow once it works.
            let wait = node_down || slots.iter().any(|s| self.lanes.waited(*s));
            let batch = self.take_batch_from(&slots, count_hubs).0;
            return self.start_send(node, None, batch, wait);
        };
        // Lanes that waited out a failure go apart: their wait for the other hubs holds up none
        // of the node's other lanes.
        let (waited, fresh): (Vec<u16>, Vec<u16>) = slots
            .into_iter()
            .partition(|slot| node_down || self.lanes.waited(*slot));
        for (group, wait) in [(fresh, false), (waited, true)] {
            let mut rest = group.as_slice();
            while !rest.is_empty() {
                let (batch, used) = self.take_batch_from(rest, count_hubs);
                rest = &rest[used..];
                self.start_send(node.clone(), Some(conn.clone()), batch, wait);
            }
        }
    }

    /// Messages of the first of `slots`, up to [`MAX_BATCH`] in all; with how many slots it took.
    fn take_batch_from(&mut self, slots: &[u16], count_hubs: bool) -> (Batch, usize) {
        let mut lanes = Vec::new();
        let mut room = MAX_BATCH;
        for &slot in slots {
            if room == 0 {
                break;
            }
            let items = self.lanes.take(slot, room);
            room -= items.len();
            lanes.push((slot, items));
        }
        let used = lanes.len();
        (
            Batch {
                lanes,
                counts_hubs: count_hubs,
            },
            used,
        )
    }

    fn start_send(
        &mut self,
        node: Node,
        conn: Option<(MultiplexedConnection, u64)>,
        batch: Batch,
        wait: bool,
    ) {
        let mut wait_for = HashMap::new();
        if wait {
            if batch.counts_hubs {
                wait_for.insert(self.ctx.broadcast.clone(), self.hubs_listening);
            }
            for item in batch.items() {
                let before = self.counts.receivers(&item.channel);
                wait_for.insert(item.channel.clone(), before);
            }
        }
        *self.sending.entry(node.clone()).or_default() += 1;
        let attempt = Attempt {
            node,
            conn,
            work: Work::Send { batch, wait_for },
        };
        let ctx = self.ctx.clone();
        self.work.push(attempt.run(ctx).map(Event::Done).boxed());
    }

    fn start_check(
        &mut self,
        node: Node,
        conn: Option<(MultiplexedConnection, u64)>,
        count_hubs: bool,
    ) {
        self.checking.insert(node.clone());
        let attempt = Attempt {
            node,
            conn,
            work: Work::Check { count_hubs },
        };
        let ctx = self.ctx.clone();
        self.work.push(attempt.run(ctx).map(Event::Done).boxed());
    }

    /// Every interval: check each master's connection (a node that died or stalled while idle
    /// is noticed before a message needs it) and, on a cluster, read the topology again.
    fn on_tick(&mut self) {
        if self.ctx.link.redis.is_cluster() {
            self.read_topology();
        }
        let Some(topology) = &self.topology else {
            return;
        };
        let count_hubs_on = topology.master(self.broadcast_slot).cloned();
        for node in topology.masters() {
            if self.checking.contains(&node) || self.sending.contains_key(&node) {
                continue;
            }
            let Some(conn) = self.nodes.get(&node).and_then(NodeState::conn) else {
                continue;
            };
            let count_hubs = count_hubs_on.as_ref() == Some(&node);
            self.start_check(node, Some(conn), count_hubs);
        }
    }

    fn read_topology(&mut self) {
        if self.reading_topology {
            return;
        }
        self.reading_topology = true;
        let via = self
            .nodes
            .iter()
            .find_map(|(node, state)| state.conn().map(|(c, _)| (node.clone(), c)));
        let known: Vec<Node> = self.nodes.keys().cloned().collect();
        let redis = self.ctx.link.redis.clone();
        let read = async move {
            let topology = redis.target().topology(via, &known, redis.timeout()).await;
            Event::Topology(topology)
        };
        self.work.push(read.boxed());
    }

    fn on_topology(&mut self, topology: Option<Topology>) {
        self.reading_topology = false;
        let Some(topology) = topology else {
            tracing::warn!("publisher: no redis node told which master serves which slot");
            return;
        };
        if self.topology.as_ref() != Some(&topology) {
            let masters = topology.masters();
            if self.topology.is_some() {
                tracing::warn!(?masters, "redis cluster masters changed");
            }
            // Nodes that serve nothing any more are forgotten (their connections dropped).
            self.nodes
                .retain(|node, state| masters.contains(node) || state.connecting);
            self.topology = Some(topology);
            self.update_up();
        }
    }

    fn on_done(&mut self, done: Done) {
        let now = Instant::now();
        let Done { node, via, outcome } = done;
        let failed = matches!(outcome, Outcome::Failed(_));
        let was_connected = matches!(via, Via::Existing(_));
        let reconnect_max = self.ctx.link.redis.reconnect_max();
        let state = self
            .nodes
            .entry(node.clone())
            .or_insert_with(|| NodeState::new(reconnect_max));
        match (via, failed) {
            (Via::Made(Some(conn)), false) => {
                state.connected(conn);
            }
            (Via::Made(_), _) => {
                state.failed(None, now);
            }
            (Via::Existing(number), true) => {
                state.failed(Some(number), now);
            }
            (Via::Existing(_), false) => {}
        }
        match outcome {
            Outcome::Checked(hubs) => {
                self.checking.remove(&node);
                if let Some(hubs) = hubs {
                    self.hubs_listening = hubs;
                }
            }
            Outcome::Failed(None) => {
                self.checking.remove(&node);
                if was_connected {
                    tracing::warn!(%node, "redis did not answer the publisher's check in time");
                }
            }
            Outcome::Failed(Some(batch)) => {
                self.sent_one(&node);
                for (slot, items) in batch.lanes {
                    self.lanes.returned(slot, items, Sent::NodeFailed, now);
                }
            }
            Outcome::Sent {
                batch,
                replies,
                took,
            } => {
                self.sent_one(&node);
                self.settle(&node, batch, &replies, took, now)
            }
        }
        if failed && self.ctx.link.redis.is_cluster() {
            // A failover may be under way: look for the new master at once.
            self.read_topology();
        }
        self.update_up();
    }

    /// A batch on `node` came back.
    fn sent_one(&mut self, node: &Node) {
        if let Some(n) = self.sending.get_mut(node) {
            *n -= 1;
            if *n == 0 {
                self.sending.remove(node);
            }
        }
    }

    /// Keeps the senders' promises for what Redis answered — an ack with the offset, or an error
    /// for a message Redis refused — and puts back, in order, what it asked to have again.
    fn settle(
        &mut self,
        node: &Node,
        batch: Batch,
        replies: &[Value],
        took: Duration,
        now: Instant,
    ) {
        if let Some(n) = batch.hubs_listening(replies) {
            self.hubs_listening = n;
        }
        let mut replies = replies.iter();
        let (mut sent, mut settled, mut held) = (0u64, 0usize, 0usize);
        let (mut noscript, mut codes) = (false, Vec::new());
        for (slot, items) in batch.lanes {
            let (mut kept, mut moved) = (Vec::new(), false);
            for item in items {
                match replies.next() {
                    Some(reply) if !must_retry(reply) => {
                        sent += u64::from(self.answer(item, reply));
                        settled += 1;
                    }
                    reply => {
                        if let Some(Value::ServerError(err)) = reply
                            && !codes.contains(&err.code().to_owned())
                        {
                            codes.push(err.code().to_owned());
                        }
                        noscript |= reply.is_some_and(is_noscript);
                        moved |= reply.is_none_or(subscribers_moved);
                        kept.push(item);
                    }
                }
            }
            held += kept.len();
            let how = match kept.is_empty() {
                true => Sent::Done,
                false => Sent::Retry { moved },
            };
            self.lanes.returned(slot, kept, how, now);
        }
        if held > 0 {
            // A Redis that forgot the script (SCRIPT FLUSH, a restart, a replica promoted without
            // it): reconnect, which loads it. A cluster in motion (MOVED, CLUSTERDOWN while a
            // replica is elected): read the topology again. Either way the messages go again
            // after a short backoff.
            // Once a second at most: a cluster refusing writes for a second asks many times.
            if self
                .retry_warned
                .is_none_or(|at| now >= at + Duration::from_secs(1))
            {
                self.retry_warned = Some(now);
                tracing::warn!(%node, held, ?codes, "redis asked for a retry");
            }
            if noscript && let Some(state) = self.nodes.get_mut(node) {
                state.reset();
            }
            if self.ctx.link.redis.is_cluster() {
                self.read_topology();
            }
        }
        let bridge = &self.ctx.link.bridge;
        bridge.buffered.fetch_sub(settled, Ordering::AcqRel);
        if sent > 0 {
            bridge.counters.timings.publish_round_trip(took);
        }
        bridge.counters.published.fetch_add(sent, Ordering::Relaxed);
    }

    /// Answers one message's sender; true when it was published.
    fn answer(&mut self, item: Item, reply: &Value) -> bool {
        let counters = &self.ctx.link.bridge.counters;
        if let Value::ServerError(err) = reply {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(channel = %item.channel, code = err.code(), "redis refused a message");
            if let Some(ack) = item.ack {
                ack.fail(&ProtocolError::Unavailable);
            }
            return false;
        }
        let (stored, receivers) = item.reply(reply);
        if let Some(count) = receivers {
            self.counts.set_receivers(&item.channel, count);
        }
        if let Some(ack) = item.ack {
            ack.send(stored);
        }
        true
    }

    /// The next moment something waiting out a backoff may go (what may go now is started, or
    /// waits for its node).
    fn next_retry(&self) -> Option<Instant> {
        let now = Instant::now();
        let masters = self.topology.as_ref().map(Topology::masters)?;
        let nodes = masters
            .iter()
            .filter_map(|n| self.nodes.get(n))
            .filter_map(NodeState::retry_at);
        nodes
            .chain(self.lanes.next_retry())
            .filter(|at| *at > now)
            .min()
    }

    /// Up while some master answers (on one Redis: while it does).
    fn update_up(&self) {
        let up = self.topology.as_ref().is_some_and(|t| {
            t.masters()
                .iter()
                .any(|n| self.nodes.get(n).is_some_and(NodeState::is_up))
        });
        super::Link::set_up(&self.ctx.link.bridge.publisher_up, up, "publisher");
    }

    fn report_unsent(&self) {
        let unsent = self.lanes.queued() + self.rx.len();
        if unsent > 0 {
            tracing::warn!(
                unsent,
                "shutting down with cross-hub messages not published"
            );
        }
    }
}
