//! `idempotency_key`: the same key within [`WINDOW`] gets the first answer and publishes nothing.
//!
//! With Redis the record is shared by every hub, so a retry that lands on another hub is caught
//! too: the first request claims the key (one script: read it, or set a pending marker), publishes,
//! then stores its answer in place of the marker for [`WINDOW`]. A concurrent duplicate finds the
//! marker and polls until the answer is there. A failed publish removes its marker, so a retry can
//! publish. Standalone, the same in memory: a map bounded in entries, whose entries expire by age.
//!
//! The marker lives only as long as a claim can take to be answered ([`Idempotency::pending_ttl`],
//! a few `redis_timeout`s): a claim whose reply timed out but that Redis carried out later (a
//! stalled Redis), or a hub that died mid-publish, blocks the key for seconds, not for the whole
//! window. The price: a hub killed between its publish and storing the answer lets a retry after
//! the marker expired publish a second copy.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::Value;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::ApiError;
use crate::redis_link::Redis;

/// How long a key is remembered.
pub const WINDOW: Duration = Duration::from_secs(300);

/// Most keys a standalone hub remembers at once (about 200 bytes each); past it, publishes with a
/// new key get 503 until old ones expire, rather than silently forgetting a key within its window.
pub const MEMORY_CAP: usize = 100_000;

/// Longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 128;

/// What `POST /api/publish` answered: also what a repeated request gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub id: String,
    pub offset: Option<u64>,
    pub epoch: Option<String>,
}

/// Claims `key` if nobody has: returns nothing and sets a pending marker (TTL `ARGV[2]` ms); else
/// returns what is there (the marker or the answer). One round trip, atomic.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
";

/// Puts the answer in place of the marker, for the window (`ARGV[3]` ms), if it is still ours.
const COMPLETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return false
";

/// Removes the marker if it is still ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// The outcome of trying to claim a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Nobody had it: publish, then [`Idempotency::complete`] or [`Idempotency::release`].
    Mine(Ticket),
    /// Answered before.
    Answered(Answer),
    /// Another request holds it and has not answered yet.
    Pending,
}

/// Proof of a claim: the marker's value (Redis) or the entry's generation (memory).
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket(String);

pub enum Idempotency {
    Redis {
        redis: Redis,
        prefix: String,
        claim: redis::Script,
        complete: redis::Script,
        release: redis::Script,
        timeout: Duration,
        pending_ttl: Duration,
    },
    Memory(Mutex<MemoryKeys>),
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Idempotency::Redis { prefix, .. } => {
                write!(f, "Idempotency::Redis({prefix}api:idem:*)")
            }
            Idempotency::Memory(_) => f.write_str("Idempotency::Memory"),
        }
    }
}

const UNAVAILABLE: ApiError = ApiError::Unavailable("redis is unavailable: nothing was published");

impl Idempotency {
    pub fn new(redis: Option<&Redis>, redis_prefix: &str, redis_timeout: Duration) -> Self {
        match redis {
            Some(redis) => Idempotency::Redis {
                redis: redis.clone(),
                prefix: format!("{redis_prefix}api:idem:"),
                claim: redis::Script::new(CLAIM),
                complete: redis::Script::new(COMPLETE),
                release: redis::Script::new(RELEASE),
                timeout: redis_timeout,
                pending_ttl: Self::pending_ttl(redis_timeout),
            },
            None => Idempotency::Memory(Mutex::new(MemoryKeys::new(MEMORY_CAP))),
        }
    }

    /// How long a claim may stay unanswered: its claim, publish (at most two `redis_timeout`s)
    /// and answer, with room to spare. A duplicate waits at most this long.
    pub fn pending_ttl(redis_timeout: Duration) -> Duration {
        (redis_timeout * 5).max(Duration::from_secs(10))
    }

    pub async fn claim(&self, key: &str) -> Result<Claim, ApiError> {
        match self {
            Idempotency::Redis {
                redis,
                prefix,
                claim,
                timeout,
                pending_ttl,
                ..
            } => {
                let marker = format!("pending:{}", uuid::Uuid::new_v4().simple());
                let mut conn = redis.commands().await.ok_or(UNAVAILABLE)?;
                let mut call = claim.key(format!("{prefix}{key}"));
                call.arg(&marker).arg(pending_ttl.as_millis() as u64);
                let reply = tokio::time::timeout(*timeout, call.invoke_async::<Value>(&mut conn));
                match reply.await {
                    Ok(Ok(Value::Nil)) => Ok(Claim::Mine(Ticket(marker))),
                    Ok(Ok(Value::BulkString(v))) if v.starts_with(b"pending:") => {
                        Ok(Claim::Pending)
                    }
                    Ok(Ok(Value::BulkString(v))) => match serde_json::from_slice(&v) {
                        Ok(answer) => Ok(Claim::Answered(answer)),
                        Err(err) => {
                            tracing::warn!(%err, "idempotency: undecodable record in redis");
                            Err(UNAVAILABLE)
                        }
                    },
                    Ok(Ok(other)) => {
                        tracing::warn!(?other, "idempotency: unexpected reply from redis");
                        Err(UNAVAILABLE)
                    }
                    Ok(Err(err)) => {
                        tracing::debug!(%err, "idempotency: claim failed");
                        Err(UNAVAILABLE)
                    }
                    Err(_) => Err(UNAVAILABLE),
                }
            }
            Idempotency::Memory(keys) => lock(keys).claim(key, Instant::now()),
        }
    }

    /// Stores the answer in place of the marker. Best effort: the message is out, and the caller
    /// gets its answer anyway.
    pub async fn complete(&self, key: &str, ticket: Ticket, answer: &Answer) {
        match self {
            Idempotency::Redis {
                redis,
                prefix,
                complete,
                timeout,
                ..
            } => {
                let stored = async {
                    let mut conn = redis.commands().await?;
                    let mut call = complete.key(format!("{prefix}{key}"));
                    call.arg(&ticket.0)
                        .arg(serde_json::to_string(answer).unwrap_or_default())
                        .arg(WINDOW.as_millis() as u64);
                    let reply = call.invoke_async::<Value>(&mut conn);
                    tokio::time::timeout(*timeout, reply).await.ok()?.ok()
                };
                if !matches!(stored.await, Some(Value::Okay)) {
                    tracing::warn!("idempotency: answer not stored (redis unavailable)");
                }
            }
            Idempotency::Memory(keys) => lock(keys).complete(key, &ticket, answer.clone()),
        }
    }

    /// Forgets a claim whose publish failed, so that a retry can publish.
    pub async fn release(&self, key: &str, ticket: Ticket) {
        match self {
            Idempotency::Redis {
                redis,
                prefix,
                release,
                timeout,
                ..
            } => {
                let Some(mut conn) = redis.commands().await else {
                    return;
                };
                let mut call = release.key(format!("{prefix}{key}"));
                call.arg(&ticket.0);
                let _ = tokio::time::timeout(*timeout, call.invoke_async::<Value>(&mut conn)).await;
            }
            Idempotency::Memory(keys) => lock(keys).release(key, &ticket),
        }
    }
}

fn lock(keys: &Mutex<MemoryKeys>) -> std::sync::MutexGuard<'_, MemoryKeys> {
    keys.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The standalone record: keys in the order they were claimed, which is also the order in which
/// they expire (one fixed window), so expiry pops from the front.
#[derive(Debug)]
pub struct MemoryKeys {
    entries: HashMap<String, Entry>,
    order: VecDeque<(Instant, String, u64)>,
    next_generation: u64,
    cap: usize,
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    answer: Option<Answer>,
}

impl MemoryKeys {
    pub fn new(cap: usize) -> Self {
        MemoryKeys {
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            cap,
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((claimed, _, _)) = self.order.front() {
            if now.duration_since(*claimed) < WINDOW {
                break;
            }
            if let Some((_, key, generation)) = self.order.pop_front()
                && self
                    .entries
                    .get(&key)
                    .is_some_and(|e| e.generation == generation)
            {
                self.entries.remove(&key);
            }
        }
    }

    pub fn claim(&mut self, key: &str, now: Instant) -> Result<Claim, ApiError> {
        self.expire(now);
        if let Some(entry) = self.entries.get(key) {
            return Ok(match &entry.answer {
                Some(answer) => Claim::Answered(answer.clone()),
                None => Claim::Pending,
            });
        }
        if self.entries.len() >= self.cap {
            return Err(ApiError::Unavailable(
                "too many idempotency keys in the last 5 minutes: nothing was published",
            ));
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.entries.insert(
            key.to_owned(),
            Entry {
                generation,
                answer: None,
            },
        );
        self.order.push_back((now, key.to_owned(), generation));
        Ok(Claim::Mine(Ticket(generation.to_string())))
    }

    fn ours(&mut self, key: &str, ticket: &Ticket) -> Option<&mut Entry> {
        self.entries
            .get_mut(key)
            .filter(|e| e.generation.to_string() == ticket.0)
    }

    pub fn complete(&mut self, key: &str, ticket: &Ticket, answer: Answer) {
        if let Some(entry) = self.ours(key, ticket) {
            entry.answer = Some(answer);
        }
    }

    pub fn release(&mut self, key: &str, ticket: &Ticket) {
        if self.ours(key, ticket).is_some() {
            self.entries.remove(key);
        }
    }
}

/// A usable key: 1-128 visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_field(
            "bad_idempotency_key",
            format!("idempotency_key must be 1-{MAX_KEY_BYTES} visible ASCII characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: &str) -> Answer {
        Answer {
            id: id.into(),
            offset: Some(1),
            epoch: Some("e".into()),
        }
    }

    fn mine(claim: Result<Claim, ApiError>) -> Ticket {
        match claim {
            Ok(Claim::Mine(ticket)) => ticket,
            other => panic!("expected to claim, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_answers_the_same_for_five_minutes_then_is_free_again() {
        let mut keys = MemoryKeys::new(10);
        let t0 = Instant::now();
        let ticket = mine(keys.claim("k", t0));
        assert_eq!(keys.claim("k", t0), Ok(Claim::Pending));
        keys.complete("k", &ticket, answer("a"));
        tokio::time::advance(WINDOW - Duration::from_secs(1)).await;
        assert_eq!(
            keys.claim("k", Instant::now()),
            Ok(Claim::Answered(answer("a")))
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        mine(keys.claim("k", Instant::now()));
        assert_eq!(keys.entries.len(), 1, "the expired entry is gone");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_publish_frees_its_key_and_a_stale_ticket_changes_nothing() {
        let mut keys = MemoryKeys::new(10);
        let first = mine(keys.claim("k", Instant::now()));
        keys.release("k", &first);
        let second = mine(keys.claim("k", Instant::now()));
        keys.release("k", &first);
        keys.complete("k", &first, answer("stale"));
        assert_eq!(keys.claim("k", Instant::now()), Ok(Claim::Pending));
        keys.complete("k", &second, answer("b"));
        assert_eq!(
            keys.claim("k", Instant::now()),
            Ok(Claim::Answered(answer("b")))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_memory_record_is_bounded_and_frees_by_age() {
        let mut keys = MemoryKeys::new(2);
        mine(keys.claim("a", Instant::now()));
        tokio::time::advance(Duration::from_secs(60)).await;
        mine(keys.claim("b", Instant::now()));
        let full = keys.claim("c", Instant::now());
        assert_eq!(full.map_err(|e| e.code()), Err("unavailable"));
        tokio::time::advance(WINDOW - Duration::from_secs(60)).await;
        mine(keys.claim("c", Instant::now()));
        assert_eq!(keys.entries.len(), 2, "a expired, b and c remain");
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(check_key("order-42:retry_1").is_ok());
        for bad in ["", "with space", "é", &"k".repeat(MAX_KEY_BYTES + 1)] {
            assert_eq!(
                check_key(bad).unwrap_err().code(),
                "bad_idempotency_key",
                "{bad:?}"
            );
        }
    }
}
