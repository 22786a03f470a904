//! Sends local messages to Redis: one command per client message, pipelined in batches, in the
//! order the hub produced them — a PUBLISH, or for a room message with history on, one EVALSHA
//! of the append script (store and publish in one atomic step) whose reply carries the offset for
//! the sender's ack. While Redis is unreachable the bounded queue is the outage buffer; after a
//! reconnect the batch that failed is sent again (receivers drop duplicate publishes by `seq`,
//! the append script duplicate appends by origin and `seq`).
//!
//! On a Redis Cluster the commands are SPUBLISH and the sharded append, and a batch goes out as
//! one pipeline per hash slot, each to its slot's master, all at once (a redis-rs pipeline goes
//! whole to one node). A slot whose pipeline fails or meets a cluster in motion (MOVED, a master
//! down) keeps its messages for the next attempt, on a fresh connection that sees the new
//! topology; the other slots' messages are done. Within a room (one slot) the order holds.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::envelope::{Header, encode, encode_head};
use super::redis_link::{Conn, is_cluster_transient, key_slot};
use super::{Ack, Link, Outgoing, Stored, Target};
use crate::history::{new_epoch, scripts};

/// Most PUBLISH commands in one pipeline: large enough to amortize round trips under load,
/// small enough that one slow batch does not hold the rest for long.
const MAX_BATCH: usize = 512;
/// The longest a reconnected publisher waits for the other hubs before flushing what it buffered.
const RESUME_WAIT: Duration = Duration::from_secs(5);
/// Channels remembered for their counts; past this the half published to longest ago is
/// forgotten (their counts restart at 1, which receivers take as a restart, not a loss), never
/// all of them at once.
const MAX_TRACKED_CHANNELS: usize = 65536;

#[derive(Debug, Default, Clone, Copy)]
struct ChannelStats {
    /// Publishes on this channel by this hub, so receivers can count what they missed.
    published: u64,
    /// Subscribers that received the last publish here: who to wait for after an outage.
    receivers: i64,
    /// The batch of this hub's last publish here (the publisher counts its batches): how recent.
    batch: u64,
}

/// Keeps the channels published to in the newer half of the batches.
fn forget_older_half(stats: &mut HashMap<String, ChannelStats>) {
    let mut batches: Vec<u64> = stats.values().map(|s| s.batch).collect();
    if let Some(cut) = super::sequence::median(&mut batches) {
        stats.retain(|_, s| s.batch > cut);
    }
}

/// How rooms keep their history: how many messages, and for how long (the append script's
/// arguments, worked out once; see `history::scripts` for the slack and the margin).
#[derive(Debug, Clone)]
pub(super) struct Retention {
    last_index: String,
    trim_at: String,
    ttl_ms: String,
    refresh_ms: String,
}

impl Retention {
    pub fn new(size: usize, ttl: Duration) -> Self {
        let refresh = (ttl.as_millis() / 16).max(1);
        Retention {
            last_index: size.saturating_sub(1).to_string(),
            trim_at: (size + (size / 16).max(1)).to_string(),
            ttl_ms: (ttl.as_millis() + 2 * refresh).to_string(),
            refresh_ms: refresh.to_string(),
        }
    }
}

/// The hub's wall clock in ms, for the append script's TTL refresh.
fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string()
}

/// One message of a batch, ready to send (and to send again after a failure).
struct Item {
    channel: String,
    /// The channel's hash slot (a cluster; 0 on one Redis).
    slot: u16,
    command: redis::Cmd,
    /// An append (EVALSHA) rather than a plain PUBLISH: its reply is `{offset, epoch, receivers}`.
    stored: bool,
    ack: Option<Ack>,
}

#[derive(Default)]
struct Batch {
    items: Vec<Item>,
}

pub(super) async fn run(
    link: Link,
    mut rx: mpsc::Receiver<Outgoing>,
    check_interval: Duration,
    retention: Retention,
) {
    let origin = link.bridge.channels.clone();
    let instance = link.instance_id;
    let mut stats: HashMap<String, ChannelStats> = HashMap::new();
    let mut seq = 0u64;
    let mut batch = 0u64;
    let mut pending = Batch::default();
    // The append script's SHA, loaded on every (re)connect: a restarted Redis has forgotten it.
    let sharded = origin.is_sharded();
    let append_source = match sharded {
        true => scripts::append_sharded(),
        false => scripts::APPEND.to_owned(),
    };
    let append = redis::Script::new(&append_source);
    let mut incoming = Vec::with_capacity(MAX_BATCH);
    let mut backoff = Backoff::new(link.reconnect_max);
    let mut conn = None;
    let broadcast = origin.name(&super::Target::Broadcast);
    // Every hub subscribes to the broadcast channel: its subscriber count is the number of hubs
    // listening, learned with each batch and awaited again after an outage.
    let mut hubs_listening = 0i64;
    let mut check = tokio::time::interval(check_interval);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let Some(mut c) = conn.take() else {
            let Some(c) = link.connect("publisher").await else {
                return report_unsent(&pending, &rx);
            };
            link.bridge
                .counters
                .reconnects
                .fetch_add(1, Ordering::Relaxed);
            if !load_script(&link, c.clone(), &append, &append_source).await {
                super::Link::set_up(&link.bridge.publisher_up, false, "publisher");
                if !link.pause(backoff.next_delay()).await {
                    return report_unsent(&pending, &rx);
                }
                continue;
            }
            // Messages that waited out the outage (failed batch or still queued) need listeners.
            if !pending.items.is_empty() || !rx.is_empty() {
                let mut wanted: HashMap<&str, i64> =
                    HashMap::from([(broadcast.as_str(), hubs_listening)]);
                for item in &pending.items {
                    let receivers = stats.get(&item.channel).map_or(0, |s| s.receivers);
                    wanted.insert(&item.channel, receivers);
                }
                wait_for_subscribers(&link, c.clone(), wanted).await;
            }
            super::Link::set_up(&link.bridge.publisher_up, true, "publisher");
            conn = Some(c);
            continue;
        };

        if pending.items.is_empty() {
            let n = tokio::select! {
                n = rx.recv_many(&mut incoming, MAX_BATCH) => n,
                _ = link.shutdown.wait(), if rx.is_empty() => return,
                _ = check.tick() => {
                    // While idle: notice a dead or stalled Redis before a message needs it, and
                    // keep count of the hubs listening.
                    match count_subscribers(&link, &mut c, &broadcast).await {
                        Some(n) => {
                            hubs_listening = n;
                            conn = Some(c);
                        }
                        None => {
                            tracing::warn!("redis did not answer the publisher's check in time");
                            super::Link::set_up(&link.bridge.publisher_up, false, "publisher");
                        }
                    }
                    continue;
                }
            };
            if n == 0 {
                return;
            }
            if stats.len() > MAX_TRACKED_CHANNELS {
                forget_older_half(&mut stats);
            }
            batch += 1;
            // One clock reading per batch: the append script only needs it to within its TTL
            // refresh interval (history_ttl / 16).
            let now = now_ms();
            for out in incoming.drain(..) {
                let channel = origin.name(&out.target);
                let entry = stats.entry(channel.clone()).or_default();
                entry.published += 1;
                entry.batch = batch;
                seq += 1;
                let header = Header {
                    origin: instance,
                    seq,
                    n: entry.published,
                    local: out.delivered_locally,
                    id: &out.id,
                };
                let command = match (&out.target, out.store) {
                    (Target::Room(room), true) => {
                        let (list, meta) = origin.history_keys(room);
                        let mut cmd = redis::cmd("EVALSHA");
                        cmd.arg(append.get_hash())
                            .arg(2)
                            .arg(list)
                            .arg(meta)
                            .arg(out.frame.as_str())
                            .arg(&retention.last_index)
                            .arg(&retention.trim_at)
                            .arg(&retention.ttl_ms)
                            .arg(&retention.refresh_ms)
                            .arg(&now)
                            .arg(&channel)
                            .arg(encode_head(&header))
                            .arg(new_epoch())
                            .arg(instance.to_string())
                            .arg(seq);
                        cmd
                    }
                    _ => {
                        let mut cmd = redis::cmd(origin.publish_command());
                        cmd.arg(&channel).arg(encode(&header, &out.frame));
                        cmd
                    }
                };
                pending.items.push(Item {
                    slot: if sharded { key_slot(&channel) } else { 0 },
                    channel,
                    command,
                    stored: out.store,
                    ack: out.ack,
                });
            }
        }

        let groups = Group::split(&pending.items, sharded, key_slot(&broadcast));
        // Each slot's pipeline under its own timeout: a stalled master holds back its own
        // messages, and the replies of the others are kept (re-sending them would store nothing
        // but leave their senders' acks without offsets).
        let timeout = link.timeout;
        let sends = groups.iter().map(|g| {
            let pipe = g.pipeline(&pending.items, sharded, &broadcast);
            let mut c = c.clone();
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
        let mut items: Vec<Option<Item>> = pending.items.drain(..).map(Some).collect();
        let mut sent = 0;
        let mut all_done = answers.len() == groups.len();
        for (group, answer) in groups.iter().zip(answers) {
            let replies = match answer {
                // A Redis that forgot the script (SCRIPT FLUSH, a replica promoted without it)
                // or a cluster in motion: reconnect, which loads the script and sees the new
                // topology, and send this slot's messages again.
                Ok(replies) if replies.iter().any(must_retry) => {
                    tracing::warn!(
                        held = group.items.len(),
                        "redis asked for a retry (NOSCRIPT, MOVED or a master down)"
                    );
                    all_done = false;
                    continue;
                }
                Ok(replies) => replies,
                Err(err) => {
                    tracing::warn!(%err, held = group.items.len(), "publish failed");
                    all_done = false;
                    continue;
                }
            };
            for (&i, reply) in group.items.iter().zip(&replies) {
                let Some(item) = items[i].take() else {
                    continue;
                };
                if let redis::Value::ServerError(err) = reply {
                    link.bridge.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(channel = %item.channel, code = err.code(), "redis refused a message");
                    if let Some(ack) = item.ack {
                        ack.fail(&crate::error::ProtocolError::Unavailable);
                    }
                    continue;
                }
                sent += 1;
                let (stored, receivers) = reply_of(item.stored, reply);
                if let (Some(s), Some(count)) = (stats.get_mut(&item.channel), receivers) {
                    s.receivers = count;
                }
                if let Some(ack) = item.ack {
                    ack.send(stored);
                }
            }
            if group.counts_hubs
                && let Some(redis::Value::Array(numsub)) = replies.last()
                && let Some(redis::Value::Int(n)) = numsub.get(1)
            {
                hubs_listening = *n;
            }
        }
        // What did not go waits for the next attempt, in its order.
        pending.items.extend(items.into_iter().flatten());
        if sent > 0 {
            link.bridge
                .counters
                .timings
                .publish_round_trip(sent_at.elapsed());
        }
        link.bridge
            .counters
            .published
            .fetch_add(sent, Ordering::Relaxed);
        if all_done {
            backoff.reset();
            conn = Some(c);
        } else {
            super::Link::set_up(&link.bridge.publisher_up, false, "publisher");
            if !link.pause(backoff.next_delay()).await {
                return report_unsent(&pending, &rx);
            }
        }
    }
}

/// The messages of a batch that travel in one pipeline: all of them on one Redis; on a cluster,
/// those of one hash slot (in batch order).
struct Group {
    slot: u16,
    /// Indices into the batch.
    items: Vec<usize>,
    /// The pipeline ends with a subscriber count of the broadcast channel (the hubs listening).
    counts_hubs: bool,
}

impl Group {
    fn split(items: &[Item], sharded: bool, broadcast_slot: u16) -> Vec<Group> {
        if !sharded {
            return vec![Group {
                slot: 0,
                items: (0..items.len()).collect(),
                counts_hubs: true,
            }];
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut at: HashMap<u16, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let g = *at.entry(item.slot).or_insert_with(|| {
                groups.push(Group {
                    slot: item.slot,
                    items: Vec::new(),
                    // Asked of the broadcast's master only when a batch goes there anyway; the
                    // idle check asks it otherwise.
                    counts_hubs: item.slot == broadcast_slot,
                });
                groups.len() - 1
            });
            groups[g].items.push(i);
        }
        groups
    }

    fn pipeline(&self, items: &[Item], sharded: bool, broadcast: &str) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        // One message's error (a full Redis refusing a write, a key of the wrong type) fails that
        // message only, not the batch: a deterministic error would otherwise be re-sent for ever.
        pipe.ignore_errors();
        for &i in &self.items {
            pipe.add_command(items[i].command.clone());
        }
        if self.counts_hubs {
            let numsub = if sharded { "SHARDNUMSUB" } else { "NUMSUB" };
            pipe.cmd("PUBSUB").arg(numsub).arg(broadcast);
        }
        pipe
    }
}

/// After an outage, holds the buffered messages until the other hubs can receive them: pub/sub
/// keeps nothing for a subscriber that is not there yet. Every live hub retries within
/// `reconnect_max`, so we wait at least that long (plus a margin for its SUBSCRIBE), and until each
/// channel has the subscribers it had before (`wanted`); never longer than [`RESUME_WAIT`].
async fn wait_for_subscribers(link: &Link, mut conn: Conn, wanted: HashMap<&str, i64>) {
    let start = Instant::now();
    let settle = start + link.reconnect_max + Duration::from_millis(250);
    let deadline = start + RESUME_WAIT;
    let channels: Vec<&str> = wanted.keys().copied().collect();
    while Instant::now() < deadline {
        let counts = tokio::time::timeout(link.timeout, conn.numsub(&channels)).await;
        let Ok(Ok(counts)) = counts else { return };
        let ready = wanted
            .iter()
            .all(|(ch, before)| counts.get(*ch).copied().unwrap_or(0) >= *before);
        if ready && Instant::now() >= settle {
            tracing::info!(?counts, "subscribers are back; flushing the outage buffer");
            return;
        }
        if !link.pause(Duration::from_millis(50)).await {
            return;
        }
    }
    tracing::warn!("other hubs did not all resubscribe in time; flushing the outage buffer anyway");
}

async fn count_subscribers(link: &Link, conn: &mut Conn, channel: &str) -> Option<i64> {
    let channels = [channel];
    match tokio::time::timeout(link.timeout, conn.numsub(&channels)).await {
        Ok(Ok(counts)) => Some(counts.get(channel).copied().unwrap_or(0)),
        _ => None,
    }
}

/// A reply that says "not done, try again": the script is missing, or the cluster is moving.
fn must_retry(reply: &redis::Value) -> bool {
    matches!(reply, redis::Value::ServerError(err)
        if err.code() == "NOSCRIPT" || is_cluster_transient(err.code()))
}

/// Where the message was stored (no offset for a plain publish or a re-sent append) and the
/// receiver count of a reply.
fn reply_of(stored: bool, reply: &redis::Value) -> (Stored, Option<i64>) {
    use redis::Value;
    let nowhere = Stored {
        offset: None,
        epoch: None,
    };
    match (stored, reply) {
        (false, Value::Int(receivers)) => (nowhere, Some(*receivers)),
        (true, Value::Array(parts)) => {
            let offset = match parts.first() {
                Some(Value::Int(o)) if *o > 0 => u64::try_from(*o).ok(),
                _ => None,
            };
            let epoch = match parts.get(1) {
                Some(Value::BulkString(e)) => String::from_utf8(e.clone()).ok(),
                _ => None,
            };
            let receivers = match parts.get(2) {
                Some(Value::Int(r)) if *r >= 0 => Some(*r),
                _ => None,
            };
            (Stored { offset, epoch }, receivers)
        }
        _ => (nowhere, None),
    }
}

/// SCRIPT LOAD on a fresh connection (on a cluster redis-rs sends it to every node); false when
/// Redis does not take it in time.
async fn load_script(link: &Link, mut conn: Conn, script: &redis::Script, source: &str) -> bool {
    let mut cmd = redis::cmd("SCRIPT");
    cmd.arg("LOAD").arg(source);
    let load = cmd.query_async::<String>(&mut conn);
    match tokio::time::timeout(link.timeout, load).await {
        Ok(Ok(sha)) if sha == script.get_hash() => true,
        Ok(Ok(sha)) => {
            tracing::error!(%sha, "redis hashed the append script differently");
            false
        }
        Ok(Err(err)) => {
            tracing::warn!(%err, "redis SCRIPT LOAD failed");
            false
        }
        Err(_) => false,
    }
}

fn report_unsent(pending: &Batch, rx: &mpsc::Receiver<Outgoing>) {
    let unsent = pending.items.len() + rx.len();
    if unsent > 0 {
        tracing::warn!(
            unsent,
            "shutting down with cross-hub messages not published"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_the_channels_published_to_longest_ago_go_not_all() {
        let mut stats: HashMap<String, ChannelStats> = (0..10u64)
            .map(|b| {
                (
                    format!("c{b}"),
                    ChannelStats {
                        published: 1,
                        receivers: 1,
                        batch: b,
                    },
                )
            })
            .collect();
        forget_older_half(&mut stats);
        let mut kept: Vec<_> = stats.keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, ["c6", "c7", "c8", "c9"]);
    }
}
