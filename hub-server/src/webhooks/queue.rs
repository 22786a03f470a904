//! Events on their way into the cluster's queue. Emitting never waits: the hub hands events to a
//! bounded local channel, and one task appends them to the Redis stream in order (pipelined,
//! retried while Redis is down, still in order). Standalone, the queue is that task's memory.
//! Once in Redis an event waits there until a backend answered 2xx (see [`super::sender`]), so a
//! hub that dies loses none of what it had appended; what is still in its local channel when it
//! dies is lost, which the README says (the window is the time to append, a millisecond).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::event::Event;
use super::keys::Keys;
use crate::redis_link::{Backoff, Redis, pause};
use crate::shutdown::Shutdown;

/// Events waiting to be appended, at most (past it they are dropped and counted).
pub const LOCAL_QUEUE: usize = 100_000;
/// The stream's length, at most (approximately, `MAXLEN ~`): a receiver down for days cannot grow
/// Redis without bound; what is trimmed is counted as dropped by the sender's age check first.
pub const STREAM_MAX: usize = 1_000_000;
/// Events appended per round trip, at most.
const BATCH: usize = 512;

/// What happened to events on this hub, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub emitted: AtomicU64,
    /// Dropped because the local queue was full.
    pub overflowed: AtomicU64,
    pub delivered: AtomicU64,
    /// Older than `webhook_max_age` and never answered 2xx: dropped.
    pub expired: AtomicU64,
    pub failed_posts: AtomicU64,
}

/// The handle the hub emits through; `Off` without `webhook_url`.
#[derive(Debug, Clone)]
pub enum Webhooks {
    Off,
    On {
        tx: mpsc::Sender<Event>,
        counters: Arc<Counters>,
    },
}

impl Webhooks {
    /// Queues `event` without waiting; counted when the local queue is full.
    pub fn emit(&self, event: Event) {
        let Webhooks::On { tx, counters } = self else {
            return;
        };
        counters.emitted.fetch_add(1, Ordering::Relaxed);
        if tx.try_send(event).is_err() {
            let lost = counters.overflowed.fetch_add(1, Ordering::Relaxed) + 1;
            if lost.is_power_of_two() {
                tracing::warn!(lost, "webhook queue full: events dropped");
            }
        }
    }

    pub fn counters(&self) -> Option<&Counters> {
        match self {
            Webhooks::Off => None,
            Webhooks::On { counters, .. } => Some(counters),
        }
    }
}

/// Where appended events live: the cluster's Redis stream, or this hub's memory.
pub enum Store {
    Redis { redis: Redis, keys: Keys },
    Memory(Arc<std::sync::Mutex<VecDeque<Event>>>),
}

/// Appends what `rx` brings to `store`, in order. Once `finish` fires (the hub's sessions and
/// presence, which emit the last events, are done), it appends what is still in `rx` and returns.
pub async fn append(
    mut rx: mpsc::Receiver<Event>,
    store: Store,
    shutdown: Shutdown,
    mut finish: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut finishing = false;
    loop {
        if finishing {
            while batch.len() < BATCH
                && let Ok(event) = rx.try_recv()
            {
                batch.push(event);
            }
            if batch.is_empty() {
                return;
            }
        } else {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
                // A dropped sender also means: finish.
                _ = &mut finish => {
                    finishing = true;
                    continue;
                }
            }
        }
        match &store {
            Store::Memory(queue) => {
                let mut queue = queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                queue.extend(batch.drain(..));
                let over = queue.len().saturating_sub(STREAM_MAX);
                queue.drain(..over);
            }
            Store::Redis { redis, keys } => {
                let mut backoff = Backoff::new(redis.reconnect_max());
                while !xadd(redis, keys, &batch).await {
                    if !pause(&shutdown, backoff.next_delay()).await {
                        tracing::warn!(
                            events = batch.len() + rx.len(),
                            "shutting down with webhook events not queued in redis"
                        );
                        return;
                    }
                }
                batch.clear();
            }
        }
    }
}

/// One pipeline of XADDs; false when Redis did not take them all in time (they go again: a
/// receiver drops a repeat by its id).
async fn xadd(redis: &Redis, keys: &Keys, batch: &[Event]) -> bool {
    let Some(mut conn) = redis.commands().await else {
        return false;
    };
    let mut pipe = redis::pipe();
    for event in batch {
        let json = serde_json::to_string(event).unwrap_or_default();
        pipe.cmd("XADD")
            .arg(&keys.events)
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAX)
            .arg("*")
            .arg("e")
            .arg(json)
            .ignore();
    }
    let sent = tokio::time::timeout(redis.timeout(), pipe.query_async::<()>(&mut conn));
    matches!(sent.await, Ok(Ok(())))
}
