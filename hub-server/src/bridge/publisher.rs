//! Sends local messages to Redis: one command per client message, pipelined in batches, in the
//! order the hub produced them — a PUBLISH, or for a room message with history on, one EVALSHA
//! of the append script (store and publish in one atomic step) whose reply carries the offset for
//! the sender's ack. While Redis is unreachable the bounded queue is the outage buffer; after a
//! reconnect the batch that failed is sent again (receivers drop duplicate publishes by `seq`,
//! the append script duplicate appends by origin and `seq`).
//!
//! On a Redis Cluster the commands are SPUBLISH and the sharded append, and a batch goes out as
//! one pipeline per hash slot, each to its slot's master, all at once (see [`pipeline`]). A slot
//! whose pipeline fails or meets a cluster in motion (MOVED, a master down) keeps its messages for
//! the next attempt, on a fresh connection that sees the new topology; the other slots' messages
//! are done. Within a room (one slot) the order holds.
//!
//! [`pipeline`]: super::pipeline

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, Interval};

use super::channel_counts::ChannelCounts;
use super::channels::{Channels, Target};
use super::envelope::{Header, encode, encode_head};
use super::pipeline::{Group, Item, must_retry};
use super::{Link, Outgoing};
use crate::error::ProtocolError;
use crate::history::{AppendArgs, Appender, unix_ms};
use crate::redis_link::{Backoff, Conn, key_slot, pause};

/// Most PUBLISH commands in one pipeline: large enough to amortize round trips under load,
/// small enough that one slow batch does not hold the rest for long.
const MAX_BATCH: usize = 512;
/// The longest a reconnected publisher waits for the other hubs before flushing what it buffered.
const RESUME_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn run(
    link: Link,
    rx: mpsc::Receiver<Outgoing>,
    check_interval: Duration,
    appender: Appender,
) {
    let channels = link.bridge.channels.clone();
    let mut check = tokio::time::interval(check_interval);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Publisher {
        broadcast: channels.name(&Target::Broadcast),
        sharded: channels.is_sharded(),
        channels,
        backoff: Backoff::new(link.redis.reconnect_max()),
        link,
        rx,
        appender,
        counts: ChannelCounts::default(),
        seq: 0,
        pending: Vec::new(),
        incoming: Vec::with_capacity(MAX_BATCH),
        hubs_listening: 0,
        check,
    }
    .run()
    .await
}

struct Publisher {
    link: Link,
    rx: mpsc::Receiver<Outgoing>,
    channels: Channels,
    sharded: bool,
    /// Every hub subscribes to the broadcast channel: its subscriber count is the number of hubs
    /// listening, learned with each batch and awaited again after an outage.
    broadcast: String,
    hubs_listening: i64,
    appender: Appender,
    counts: ChannelCounts,
    /// This hub's publishes over all channels: receivers drop what they saw (a re-sent batch).
    seq: u64,
    /// The batch being sent, or waiting to be sent again, in order.
    pending: Vec<Item>,
    incoming: Vec<Outgoing>,
    backoff: Backoff,
    /// While idle: notice a dead or stalled Redis before a message needs it.
    check: Interval,
}

/// What the wait for the next batch brought.
enum Next {
    /// A batch is pending.
    Batch,
    /// The idle check ran: the connection is good (or not).
    Checked(bool),
    /// The queue ended (shutdown, with nothing left).
    Done,
}

impl Publisher {
    async fn run(mut self) {
        let mut conn: Option<Conn> = None;
        loop {
            let c = match conn.take() {
                Some(c) => c,
                None => match self.reconnect().await {
                    Ok(c) => c,
                    Err(Stop) => return self.report_unsent(),
                },
            };
            if self.pending.is_empty() {
                match self.next_batch(&c).await {
                    Next::Batch => {}
                    Next::Checked(good) => {
                        conn = good.then_some(c);
                        continue;
                    }
                    Next::Done => return,
                }
            }
            if self.send_pending(&c).await {
                self.backoff.reset();
                conn = Some(c);
            } else {
                self.set_up(false);
                if !pause(&self.link.shutdown, self.backoff.next_delay()).await {
                    return self.report_unsent();
                }
            }
        }
    }

    /// A fresh connection with the append script loaded; after an outage, once the other hubs
    /// listen again. `Err` once shutdown begins.
    async fn reconnect(&mut self) -> Result<Conn, Stop> {
        loop {
            let conn = self
                .link
                .redis
                .connect_retrying("publisher", &self.link.shutdown)
                .await
                .ok_or(Stop)?;
            let counters = &self.link.bridge.counters;
            counters.reconnects.fetch_add(1, Ordering::Relaxed);
            if !self
                .appender
                .load(conn.clone(), self.link.redis.timeout())
                .await
            {
                self.set_up(false);
                if !pause(&self.link.shutdown, self.backoff.next_delay()).await {
                    return Err(Stop);
                }
                continue;
            }
            // Messages that waited out the outage (failed batch or still queued) need listeners.
            if !self.pending.is_empty() || !self.rx.is_empty() {
                self.wait_for_subscribers(conn.clone()).await;
            }
            self.set_up(true);
            return Ok(conn);
        }
    }

    /// Waits for messages (and frames them into the pending batch), or runs the idle check.
    async fn next_batch(&mut self, conn: &Conn) -> Next {
        let n = tokio::select! {
            n = self.rx.recv_many(&mut self.incoming, MAX_BATCH) => n,
            _ = self.link.shutdown.wait(), if self.rx.is_empty() => return Next::Done,
            _ = self.check.tick() => return Next::Checked(self.idle_check(conn.clone()).await),
        };
        if n == 0 {
            return Next::Done;
        }
        self.frame_batch();
        Next::Batch
    }

    /// Keeps count of the hubs listening; false when Redis did not answer in time.
    async fn idle_check(&mut self, mut conn: Conn) -> bool {
        let channels = [self.broadcast.as_str()];
        let asked = tokio::time::timeout(self.link.redis.timeout(), conn.numsub(&channels)).await;
        match asked {
            Ok(Ok(counts)) => {
                self.hubs_listening = counts.get(&self.broadcast).copied().unwrap_or(0);
                true
            }
            _ => {
                tracing::warn!("redis did not answer the publisher's check in time");
                self.set_up(false);
                false
            }
        }
    }

    /// Turns what came in into commands: the envelope around each frame, and a PUBLISH or an
    /// append.
    fn frame_batch(&mut self) {
        self.counts.next_batch();
        // One clock reading per batch: the append script only needs it to within its TTL refresh
        // interval (history_ttl / 16).
        let now = unix_ms();
        let origin = self.link.instance_id.to_string();
        for out in self.incoming.drain(..) {
            let channel = self.channels.name(&out.target);
            self.seq += 1;
            let header = Header {
                origin: self.link.instance_id,
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
                    self.appender.command(room, &out.frame, &args)
                }
                _ => {
                    let mut cmd = redis::cmd(self.channels.publish_command());
                    cmd.arg(&channel).arg(encode(&header, &out.frame));
                    cmd
                }
            };
            self.pending.push(Item {
                slot: if self.sharded { key_slot(&channel) } else { 0 },
                channel,
                command,
                stored: out.store,
                ack: out.ack,
            });
        }
    }

    /// Sends the pending batch, one pipeline per group, each under its own timeout: a stalled
    /// master holds back its own messages, and the replies of the others are kept (re-sending
    /// them would store nothing but leave their senders' acks without offsets). What did not go
    /// stays pending, in its order. True when everything went.
    async fn send_pending(&mut self, conn: &Conn) -> bool {
        let groups = Group::split(&self.pending, self.sharded, key_slot(&self.broadcast));
        let timeout = self.link.redis.timeout();
        let sends = groups.iter().map(|g| {
            let pipe = g.pipeline(&self.pending, self.sharded, &self.broadcast);
            let mut c = conn.clone();
            async move {
                match tokio::time::timeout(timeout, c.pipeline_on(g.slot, pipe)).await {
                    Ok(answer) => answer,
                    Err(_) => Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "publish timed out: redis stalled",
                    ))),
                }
            }
        });
        let sent_at = Instant::now();
        let answers = futures_util::future::join_all(sends).await;
        let mut items: Vec<Option<Item>> = self.pending.drain(..).map(Some).collect();
        let mut sent = 0;
        let mut all_done = true;
        for (group, answer) in groups.iter().zip(answers) {
            match answer {
                // A Redis that forgot the script (SCRIPT FLUSH, a replica promoted without it)
                // or a cluster in motion: reconnect, which loads the script and sees the new
                // topology, and send this slot's messages again.
                Ok(replies) if replies.iter().any(must_retry) => {
                    tracing::warn!(
                        held = group.items.len(),
                        "redis asked for a retry (NOSCRIPT, MOVED or a master down)"
                    );
                    all_done = false;
                }
                Ok(replies) => sent += self.settle(group, &replies, &mut items),
                Err(err) => {
                    tracing::warn!(%err, held = group.items.len(), "publish failed");
                    all_done = false;
                }
            }
        }
        self.pending.extend(items.into_iter().flatten());
        let counters = &self.link.bridge.counters;
        if sent > 0 {
            counters.timings.publish_round_trip(sent_at.elapsed());
        }
        counters.published.fetch_add(sent, Ordering::Relaxed);
        all_done
    }

    /// Takes a group's messages out of the batch and keeps their senders' promises: an ack with
    /// the offset, or an error for a message Redis refused. Returns how many were published.
    fn settle(
        &mut self,
        group: &Group,
        replies: &[redis::Value],
        items: &mut [Option<Item>],
    ) -> u64 {
        let mut sent = 0;
        for (&i, reply) in group.items.iter().zip(replies) {
            let Some(item) = items[i].take() else {
                continue;
            };
            if let redis::Value::ServerError(err) = reply {
                let counters = &self.link.bridge.counters;
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(channel = %item.channel, code = err.code(), "redis refused a message");
                if let Some(ack) = item.ack {
                    ack.fail(&ProtocolError::Unavailable);
                }
                continue;
            }
            sent += 1;
            let (stored, receivers) = item.reply(reply);
            if let Some(count) = receivers {
                self.counts.set_receivers(&item.channel, count);
            }
            if let Some(ack) = item.ack {
                ack.send(stored);
            }
        }
        if let Some(n) = group.hubs_listening(replies) {
            self.hubs_listening = n;
        }
        sent
    }

    /// After an outage, holds the buffered messages until the other hubs can receive them:
    /// pub/sub keeps nothing for a subscriber that is not there yet. Every live hub retries within
    /// `reconnect_max`, so we wait at least that long (plus a margin for its SUBSCRIBE), and until
    /// each channel has the subscribers it had before; never longer than [`RESUME_WAIT`].
    async fn wait_for_subscribers(&self, mut conn: Conn) {
        let mut wanted: HashMap<&str, i64> =
            HashMap::from([(self.broadcast.as_str(), self.hubs_listening)]);
        for item in &self.pending {
            wanted.insert(&item.channel, self.counts.receivers(&item.channel));
        }
        let start = Instant::now();
        let settle = start + self.link.redis.reconnect_max() + Duration::from_millis(250);
        let deadline = start + RESUME_WAIT;
        let channels: Vec<&str> = wanted.keys().copied().collect();
        let timeout = self.link.redis.timeout();
        while Instant::now() < deadline {
            let counts = tokio::time::timeout(timeout, conn.numsub(&channels)).await;
            let Ok(Ok(counts)) = counts else { return };
            let ready = wanted
                .iter()
                .all(|(ch, before)| counts.get(*ch).copied().unwrap_or(0) >= *before);
            if ready && Instant::now() >= settle {
                tracing::info!(?counts, "subscribers are back; flushing the outage buffer");
                return;
            }
            if !pause(&self.link.shutdown, Duration::from_millis(50)).await {
                return;
            }
        }
        tracing::warn!(
            "other hubs did not all resubscribe in time; flushing the outage buffer anyway"
        );
    }

    fn set_up(&self, up: bool) {
        super::Link::set_up(&self.link.bridge.publisher_up, up, "publisher");
    }

    fn report_unsent(&self) {
        let unsent = self.pending.len() + self.rx.len();
        if unsent > 0 {
            tracing::warn!(
                unsent,
                "shutting down with cross-hub messages not published"
            );
        }
    }
}

/// Shutdown began.
struct Stop;
