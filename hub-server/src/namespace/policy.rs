//! One namespace's policy: what its rooms keep (history), count (presence) and allow (who
//! publishes, which backend hooks run).

use std::sync::Arc;
use std::time::Duration;

/// The namespace of personal rooms, `user:<user id>`.
pub const PERSONAL: &str = "user";

/// What one namespace's rooms do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The namespace's name; `None` for the default namespace (rooms without `:`).
    pub name: Option<Arc<str>>,
    /// Messages kept per room; 0 keeps none (nothing to replay or recover).
    pub history_size: usize,
    /// A room's history is dropped this long after its last message.
    pub history_ttl: Duration,
    /// Most messages one `since` join may replay.
    pub recovery_max: usize,
    /// `false`: the rooms' members are not counted anywhere (no Redis writes), a presence
    /// question is answered `no_presence`, and no `presence_diff` is sent.
    pub presence: bool,
    /// `false`: presence is kept and answered, but no `presence_diff` is sent.
    pub presence_events: bool,
    /// `false`: only the server API publishes; a client's message is `forbidden`.
    pub client_publish: bool,
    /// Joins are first posted to the backend's subscribe proxy (backend hooks).
    pub proxy_subscribe: bool,
    /// Client messages are first posted to the backend's publish proxy (backend hooks).
    pub proxy_publish: bool,
    /// Its place in [`Namespaces::all`](super::Namespaces::all): tables kept beside the policies (say, the append
    /// script's arguments) are indexed by it.
    pub index: usize,
}

/// How the hub counts a room's members for presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceMode {
    /// Not counted at all (`presence = false`).
    Off,
    /// Counted and answered, no `presence_diff` (`presence_events = false`).
    Quiet,
    /// Counted, answered and announced.
    Events,
}

impl Policy {
    pub fn keeps_history(&self) -> bool {
        self.history_size > 0
    }

    pub fn presence_mode(&self) -> PresenceMode {
        match (self.presence, self.presence_events) {
            (false, _) => PresenceMode::Off,
            (true, false) => PresenceMode::Quiet,
            (true, true) => PresenceMode::Events,
        }
    }

    /// Whether this is the namespace of personal rooms.
    pub fn is_personal(&self) -> bool {
        self.name.as_deref() == Some(PERSONAL)
    }

    /// The name to show in messages: the namespace's, or `default`.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("default")
    }
}
