//! Sends the cluster's webhook events to `webhook_url`: one sender at a time for the whole cluster
//! (a lease in Redis, renewed while held; another hub takes over within the lease once the holder
//! dies), so each event is sent by one hub, in the order events entered the queue. A batch leaves
//! the queue only after a 2xx answer; until then it is posted again with backoff, for at most
//! `webhook_max_age` after its oldest event happened (then dropped and counted). At least once: a
//! sender that dies between the 2xx and the removal makes the next one send the batch again; the
//! receiver drops repeats by event id.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::Uri;
use redis::Value;

use super::event::{Delivery, Event};
use super::keys::Keys;
use super::queue::Counters;
use crate::hooks::Backend;
use crate::redis_link::{Backoff, Conn, Redis, pause};
use crate::shutdown::Shutdown;

/// Events per POST, at most.
const BATCH: usize = 100;
/// How long a sender's lease lasts without renewal: the longest a dead sender holds up events.
const LEASE: Duration = Duration::from_secs(5);
/// How often the queue is looked at when it was empty (and the lease renewed).
const POLL: Duration = Duration::from_millis(200);
/// The longest wait between two attempts to post a batch the receiver refused.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the sender needs.
pub struct Sender {
    pub url: Uri,
    pub backend: Backend,
    /// A POST may take as long as the hooks' timeout, but at least this (a webhook receiver may
    /// be slower than a proxy must be).
    pub post_timeout: Duration,
    pub max_age: Duration,
    /// This hub, as the lease holder.
    pub instance: String,
    pub counters: Arc<Counters>,
    pub shutdown: Shutdown,
}

/// Where the sender reads: the Redis stream (with the lease), or this hub's memory.
pub enum Source {
    Redis { redis: Redis, keys: Keys },
    Memory(Arc<Mutex<VecDeque<Event>>>),
}

impl Sender {
    pub async fn run(self, source: Source) {
        let mut backoff = Backoff::new(RETRY_MAX);
        loop {
            let sent = match &source {
                Source::Memory(queue) => self.round_in_memory(queue).await,
                Source::Redis { redis, keys } => self.round_in_redis(redis, keys).await,
            };
            let delay = match sent {
                Round::Sent => {
                    backoff.reset();
                    continue;
                }
                Round::Idle => POLL,
                Round::Failed => backoff.next_delay(),
            };
            if !self.wait_holding(&source, delay).await {
                return self.release(&source).await;
            }
        }
    }

    /// Shutdown: gives the lease back (if still ours), so another hub sends at once rather than
    /// when the lease runs out.
    async fn release(&self, source: &Source) {
        let Source::Redis { redis, keys } = source else {
            return;
        };
        let Some(mut conn) = redis.commands().await else {
            return;
        };
        let release = redis::Script::new(RELEASE_SCRIPT);
        let mut call = release.key(&keys.sender);
        call.arg(&self.instance);
        let _ = tokio::time::timeout(redis.timeout(), call.invoke_async::<i64>(&mut conn)).await;
    }

    /// Waits `delay` (false when shutdown began meanwhile), renewing the lease while it waits:
    /// a sender backing off from a refusing receiver keeps the queue, so the events go out in
    /// order from one hub; another takes over only once this one is gone.
    async fn wait_holding(&self, source: &Source, delay: Duration) -> bool {
        let step = LEASE / 3;
        let mut left = delay;
        while left > step {
            if !pause(&self.shutdown, step).await {
                return false;
            }
            left -= step;
            if let Source::Redis { redis, keys } = source {
                let held = match redis.commands().await {
                    Some(mut conn) => self.hold_lease(&mut conn, redis, keys).await,
                    None => false,
                };
                if !held {
                    // Lost it (or Redis is away): the next round finds out who sends.
                    return !self.shutdown.has_begun();
                }
            }
        }
        pause(&self.shutdown, left).await
    }

    async fn round_in_memory(&self, queue: &Mutex<VecDeque<Event>>) -> Round {
        let batch: Vec<Event> = {
            let queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.iter().take(BATCH).cloned().collect()
        };
        if batch.is_empty() {
            return Round::Idle;
        }
        let (round, done) = self.deliver(&batch).await;
        if done > 0 {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            let done = done.min(queue.len());
            queue.drain(..done);
        }
        round
    }

    async fn round_in_redis(&self, redis: &Redis, keys: &Keys) -> Round {
        let Some(mut conn) = redis.commands().await else {
            return Round::Failed;
        };
        if !self.hold_lease(&mut conn, redis, keys).await {
            return Round::Idle;
        }
        let mut read = redis::cmd("XRANGE");
        read.arg(&keys.events)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(BATCH);
        let entries =
            match tokio::time::timeout(redis.timeout(), read.query_async::<Value>(&mut conn)).await
            {
                Ok(Ok(value)) => entries(value),
                _ => return Round::Failed,
            };
        if entries.is_empty() {
            return Round::Idle;
        }
        let undecodable: Vec<&str> = entries
            .iter()
            .filter(|(_, e)| e.is_none())
            .map(|(id, _)| id.as_str())
            .collect();
        if !undecodable.is_empty() {
            let mut del = redis::cmd("XDEL");
            del.arg(&keys.events).arg(&undecodable);
            let _ = tokio::time::timeout(redis.timeout(), del.query_async::<i64>(&mut conn)).await;
            return Round::Sent;
        }
        let entries: Vec<(String, Event)> = entries
            .into_iter()
            .filter_map(|(id, e)| Some((id, e?)))
            .collect();
        let batch: Vec<Event> = entries.iter().map(|(_, e)| e.clone()).collect();
        // The lease is renewed while the POST waits (up to its timeout, longer than the lease):
        // a slow receiver must not make another hub send the same batch meanwhile.
        let post = self.deliver(&batch);
        tokio::pin!(post);
        let (round, done) = loop {
            tokio::select! {
                outcome = &mut post => break outcome,
                _ = tokio::time::sleep(LEASE / 3) => {
                    self.hold_lease(&mut conn, redis, keys).await;
                }
            }
        };
        if done > 0 {
            let ids: Vec<&str> = entries[..done].iter().map(|(id, _)| id.as_str()).collect();
            let mut del = redis::cmd("XDEL");
            del.arg(&keys.events).arg(&ids);
            let removed =
                tokio::time::timeout(redis.timeout(), del.query_async::<i64>(&mut conn)).await;
            if !matches!(removed, Ok(Ok(_))) {
                // They go again: the receiver drops the repeat.
                tracing::warn!(
                    events = done,
                    "webhook events sent but not removed from the queue"
                );
            }
        }
        round
    }

    /// Takes or renews the sender's lease; false when another hub holds it.
    async fn hold_lease(&self, conn: &mut Conn, redis: &Redis, keys: &Keys) -> bool {
        let lease = redis::Script::new(LEASE_SCRIPT);
        let mut call = lease.key(&keys.sender);
        call.arg(&self.instance).arg(LEASE.as_millis() as u64);
        let held = tokio::time::timeout(redis.timeout(), call.invoke_async::<i64>(conn)).await;
        matches!(held, Ok(Ok(1)))
    }

    /// Posts `batch` (dropping what is past `max_age` first); returns the round's outcome and
    /// how many events of the batch's front may leave the queue.
    async fn deliver(&self, batch: &[Event]) -> (Round, usize) {
        let now = crate::clock::unix_micros() / 1000;
        let max_age = self.max_age.as_millis() as u64;
        let expired = batch
            .iter()
            .take_while(|e| now.saturating_sub(e.time_ms) > max_age)
            .count();
        if expired > 0 {
            self.counters
                .expired
                .fetch_add(expired as u64, Ordering::Relaxed);
            tracing::warn!(
                events = expired,
                "webhook events older than webhook_max_age dropped unsent"
            );
            return (Round::Sent, expired);
        }
        let delivery = Delivery {
            id: uuid::Uuid::new_v4().to_string(),
            time_ms: now,
            events: batch,
        };
        match self
            .backend
            .post(&self.url, &delivery, self.post_timeout)
            .await
        {
            Ok(_) => {
                self.counters
                    .delivered
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                (Round::Sent, batch.len())
            }
            Err(err) => {
                let failed = self.counters.failed_posts.fetch_add(1, Ordering::Relaxed) + 1;
                if failed.is_power_of_two() {
                    tracing::warn!(%err, events = batch.len(), "webhook not accepted; retrying");
                }
                (Round::Failed, 0)
            }
        }
    }
}

/// How a round went.
enum Round {
    Sent,
    Idle,
    Failed,
}

/// Takes the lease when free or renews it when ours: 1 when held by `ARGV[1]` now.
const LEASE_SCRIPT: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Deletes the lease when held by `ARGV[1]`.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// `XRANGE`'s entries: `[[id, [field, value, …]], …]` with the event under field `e`; `None` for
/// an entry that does not decode (removed before anything is sent).
fn entries(value: Value) -> Vec<(String, Option<Event>)> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut parts) = item else {
                return None;
            };
            let fields = parts.pop()?;
            let id = match parts.pop()? {
                Value::BulkString(id) => String::from_utf8(id).ok()?,
                _ => return None,
            };
            let Value::Array(fields) = fields else {
                return None;
            };
            let json = fields.chunks(2).find_map(|kv| match kv {
                [Value::BulkString(k), Value::BulkString(v)] if k == b"e" => Some(v.clone()),
                _ => None,
            });
            let event = json.and_then(|json| match serde_json::from_slice(&json) {
                Ok(event) => Some(event),
                Err(err) => {
                    tracing::warn!(%id, %err, "undecodable webhook event in the queue dropped");
                    None
                }
            });
            Some((id, event))
        })
        .collect()
}
