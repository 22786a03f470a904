//! Sends local messages to Redis: one PUBLISH per client message, pipelined in batches, in the
//! order the hub produced them. While Redis is unreachable the bounded queue is the outage buffer;
//! after a reconnect the batch that failed is sent again (receivers drop the duplicates by `seq`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::envelope::encode;
use super::{Link, Outgoing};

/// Most PUBLISH commands in one pipeline: large enough to amortize round trips under load,
/// small enough that one slow batch does not hold the rest for long.
const MAX_BATCH: usize = 512;
/// How long a reconnected publisher waits for the other hubs to resubscribe before flushing what it
/// buffered; pub/sub keeps nothing for a subscriber that is not there yet.
const RESUME_WAIT: Duration = Duration::from_secs(5);
/// Channels remembered for their counts; past this the map starts over (counts restart at 1).
const MAX_TRACKED_CHANNELS: usize = 65536;

#[derive(Debug, Default, Clone, Copy)]
struct ChannelStats {
    /// Publishes on this channel by this hub, so receivers can count what they missed.
    published: u64,
    /// Subscribers that received the last publish here: who to wait for after an outage.
    receivers: i64,
}

struct Batch {
    channels: Vec<String>,
    payloads: Vec<String>,
}

pub(super) async fn run(link: Link, mut rx: mpsc::Receiver<Outgoing>) {
    let origin = link.bridge.channels.clone();
    let instance = link.instance_id;
    let mut stats: HashMap<String, ChannelStats> = HashMap::new();
    let mut seq = 0u64;
    let mut pending = Batch {
        channels: Vec::new(),
        payloads: Vec::new(),
    };
    let mut incoming = Vec::with_capacity(MAX_BATCH);
    let mut backoff = Backoff::new(link.reconnect_max);
    let mut conn = None;

    loop {
        let Some(mut c) = conn.take() else {
            let Some(c) = link.connect("publisher").await else {
                return report_unsent(&pending, &rx);
            };
            link.bridge
                .counters
                .reconnects
                .fetch_add(1, Ordering::Relaxed);
            if !pending.channels.is_empty() {
                wait_for_subscribers(&link, c.clone(), &pending, &stats).await;
            }
            super::Link::set_up(&link.bridge.publisher_up, true, "publisher");
            conn = Some(c);
            continue;
        };

        if pending.channels.is_empty() {
            let n = tokio::select! {
                n = rx.recv_many(&mut incoming, MAX_BATCH) => n,
                _ = link.shutdown.wait(), if rx.is_empty() => return,
            };
            if n == 0 {
                return;
            }
            if stats.len() > MAX_TRACKED_CHANNELS {
                stats.clear();
            }
            for out in incoming.drain(..) {
                let channel = origin.name(&out.target);
                let entry = stats.entry(channel.clone()).or_default();
                entry.published += 1;
                seq += 1;
                pending
                    .payloads
                    .push(encode(instance, seq, entry.published, &out.frame));
                pending.channels.push(channel);
            }
        }

        let mut pipe = redis::pipe();
        for (channel, payload) in pending.channels.iter().zip(&pending.payloads) {
            pipe.cmd("PUBLISH").arg(channel).arg(payload);
        }
        match tokio::time::timeout(link.timeout, pipe.query_async::<Vec<i64>>(&mut c)).await {
            Ok(Ok(receivers)) => {
                for (channel, count) in pending.channels.iter().zip(receivers) {
                    if let Some(s) = stats.get_mut(channel) {
                        s.receivers = count;
                    }
                }
                let sent = pending.channels.len() as u64;
                link.bridge
                    .counters
                    .published
                    .fetch_add(sent, Ordering::Relaxed);
                pending.channels.clear();
                pending.payloads.clear();
                backoff.reset();
                conn = Some(c);
            }
            failure => {
                match failure {
                    Ok(Err(err)) => {
                        tracing::warn!(%err, held = pending.channels.len(), "publish failed")
                    }
                    _ => tracing::warn!(
                        held = pending.channels.len(),
                        "publish timed out: redis stalled"
                    ),
                }
                super::Link::set_up(&link.bridge.publisher_up, false, "publisher");
                if !link.pause(backoff.next_delay()).await {
                    return report_unsent(&pending, &rx);
                }
            }
        }
    }
}

/// After an outage, waits (at most [`RESUME_WAIT`]) until every channel about to be flushed has
/// at least as many subscribers as it had before, so the other hubs are back to receive it.
async fn wait_for_subscribers(
    link: &Link,
    mut conn: redis::aio::MultiplexedConnection,
    pending: &Batch,
    stats: &HashMap<String, ChannelStats>,
) {
    let mut wanted: HashMap<&str, i64> = HashMap::new();
    for channel in &pending.channels {
        let before = stats.get(channel).map_or(0, |s| s.receivers);
        wanted.insert(channel, before);
    }
    let deadline = Instant::now() + RESUME_WAIT;
    while Instant::now() < deadline {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB");
        for channel in wanted.keys() {
            cmd.arg(*channel);
        }
        let counts = tokio::time::timeout(
            link.timeout,
            cmd.query_async::<HashMap<String, i64>>(&mut conn),
        )
        .await;
        let Ok(Ok(counts)) = counts else { return };
        let ready = wanted
            .iter()
            .all(|(ch, before)| counts.get(*ch).copied().unwrap_or(0) >= *before);
        if ready {
            return;
        }
        if !link.pause(Duration::from_millis(50)).await {
            return;
        }
    }
    tracing::warn!("other hubs did not all resubscribe in time; flushing the outage buffer anyway");
}

fn report_unsent(pending: &Batch, rx: &mpsc::Receiver<Outgoing>) {
    let unsent = pending.channels.len() + rx.len();
    if unsent > 0 {
        tracing::warn!(
            unsent,
            "shutting down with cross-hub messages not published"
        );
    }
}
