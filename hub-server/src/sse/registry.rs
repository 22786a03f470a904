//! The SSE session ids: made by `POST /sse/session`, claimed once by `GET /sse`, then the address
//! `POST /sse/send` delivers a running session's frames to. Ids are secrets (whoever holds one
//! speaks as its session): 128 random bits, single-use, gone after `sse_session_ttl` unclaimed,
//! never logged (their `Debug` hides them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Where `POST /sse/send` puts a session's frames: read by the session as its socket's input.
pub type Inbox = mpsc::Sender<Result<Message, WsError>>;

/// A session id, as the client holds it: 32 hex digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    fn random() -> Self {
        let bits: [u8; 16] = rand::random();
        SessionId(bits.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// What the client sent, if it is shaped like an id (anything else cannot be one).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| SessionId(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(…)")
    }
}

/// A session made and not yet opened: the token its `GET /sse` will start with.
struct Unclaimed {
    token: Option<SecretString>,
    made: Instant,
}

#[derive(Default)]
struct Maps {
    unclaimed: HashMap<SessionId, Unclaimed>,
    running: HashMap<SessionId, Inbox>,
}

/// Every SSE session of a hub, from its `POST /sse/session` to its end; a cloneable handle.
#[derive(Clone)]
pub struct Registry {
    /// A std mutex: every use is a map operation, never held across an await.
    maps: Arc<Mutex<Maps>>,
    ttl: Duration,
    max_unclaimed: usize,
}

/// `POST /sse/session` while `max_unclaimed` ids wait to be opened.
#[derive(Debug)]
pub struct Full;

/// A running session's place in the registry: dropping it (when the session ends) makes its id
/// unknown to `POST /sse/send`.
pub struct Running {
    registry: Registry,
    id: SessionId,
}

impl Registry {
    pub fn new(ttl: Duration, max_unclaimed: usize) -> Self {
        Registry {
            maps: Arc::default(),
            ttl,
            max_unclaimed,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic while holding it leaves the maps consistent (each use is one operation).
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new id for a session that will start with `token`.
    pub fn make(&self, token: Option<SecretString>, now: Instant) -> Result<SessionId, Full> {
        let id = SessionId::random();
        let mut maps = self.lock();
        if maps.unclaimed.len() >= self.max_unclaimed {
            // Expired ids go by age only when room is needed: O(n) once per full map, not per call.
            let ttl = self.ttl;
            maps.unclaimed
                .retain(|_, u| now.saturating_duration_since(u.made) < ttl);
            if maps.unclaimed.len() >= self.max_unclaimed {
                return Err(Full);
            }
        }
        maps.unclaimed
            .insert(id.clone(), Unclaimed { token, made: now });
        Ok(id)
    }

    /// Opens session `id` (once: the id is taken out of the unclaimed ones whatever happens):
    /// its token and its place among the running sessions, or `None` when the id is unknown,
    /// used already or expired.
    pub fn claim(
        &self,
        id: &SessionId,
        inbox: Inbox,
        now: Instant,
    ) -> Option<(Option<SecretString>, Running)> {
        let mut maps = self.lock();
        let unclaimed = maps.unclaimed.remove(id)?;
        if now.saturating_duration_since(unclaimed.made) >= self.ttl {
            return None;
        }
        maps.running.insert(id.clone(), inbox);
        let running = Running {
            registry: self.clone(),
            id: id.clone(),
        };
        Some((unclaimed.token, running))
    }

    /// Where the frames of running session `id` go, if it runs.
    pub fn inbox(&self, id: &SessionId) -> Option<Inbox> {
        self.lock().running.get(id).cloned()
    }

    #[cfg(test)]
    fn unclaimed(&self) -> usize {
        self.lock().unclaimed.len()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.registry.lock().running.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn inbox() -> Inbox {
        mpsc::channel(1).0
    }

    #[test]
    fn an_id_is_128_random_bits_in_hex_and_hidden_from_debug() {
        let registry = Registry::new(Duration::from_secs(30), 10);
        let now = Instant::now();
        let (a, b) = (registry.make(None, now), registry.make(None, now));
        let (a, b) = (a.expect("room"), b.expect("room"));
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a.clone()));
        assert!(!format!("{a:?}").contains(a.as_str()));
        assert_eq!(SessionId::parse("not an id"), None);
        assert_eq!(SessionId::parse(&"g".repeat(32)), None);
    }

    #[test]
    fn an_id_opens_once_with_its_token_and_sends_while_it_runs() {
        let registry = Registry::new(Duration::from_secs(30), 10);
        let now = Instant::now();
        let id = registry
            .make(Some(SecretString::from("tok")), now)
            .expect("room");
        assert!(registry.inbox(&id).is_none(), "not running before its GET");
        let (token, running) = registry.claim(&id, inbox(), now).expect("first claim");
        assert_eq!(token.expect("a token").expose_secret(), "tok");
        assert!(registry.claim(&id, inbox(), now).is_none(), "single-use");
        assert!(registry.inbox(&id).is_some());
        drop(running);
        assert!(registry.inbox(&id).is_none(), "gone with its session");
    }

    #[test]
    fn an_unclaimed_id_expires_and_the_map_is_bounded() {
        let ttl = Duration::from_secs(30);
        let registry = Registry::new(ttl, 2);
        let t0 = Instant::now();
        let old = registry.make(None, t0).expect("room");
        assert!(registry.claim(&old, inbox(), t0 + ttl).is_none(), "expired");
        registry.make(None, t0).expect("room");
        registry.make(None, t0).expect("room");
        assert!(registry.make(None, t0).is_err(), "full");
        // Once the waiting ones expire, they make room.
        registry.make(None, t0 + ttl).expect("room again");
        assert_eq!(registry.unclaimed(), 1);
    }
}
