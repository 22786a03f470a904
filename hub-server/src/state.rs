//! What every request handler and session shares: one cloneable value, passed in, never global.

use std::ops::Deref;
use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::auth::{Auth, UserSlots};
use crate::bridge::Bridge;
use crate::config::Settings;
use crate::history::History;
use crate::hub::Hub;
use crate::origin::AllowedOrigins;
use crate::redis_link::Redis;
use crate::shutdown::Shutdown;
use crate::slots::Slots;

/// A handle on the hub's [`Parts`]: one pointer. Every session keeps one for its whole life, and
/// a copy of the parts themselves was ~240 bytes of each idle connection (and ~20 reference
/// counts bumped per connect).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Parts>);

impl AppState {
    pub fn new(parts: Parts) -> Self {
        AppState(Arc::new(parts))
    }
}

impl Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

#[derive(Debug)]
pub struct Parts {
    pub hub: Hub,
    pub bridge: Bridge,
    /// The configured Redis (`None` standalone), for one-off requests (the API's idempotency).
    pub redis: Option<Redis>,
    pub settings: Arc<Settings>,
    pub origins: Arc<AllowedOrigins>,
    pub shutdown: Shutdown,
    /// Every session task, so shutdown can wait until each has sent its close frame.
    pub sessions: TaskTracker,
    /// Connections admitted (upgrading or in a session), against `max_connections`.
    pub slots: Slots,
    pub auth: Auth,
    pub history: History,
    /// Connections per user, against `max_connections_per_user` (`auth_mode = jwt` only).
    pub users: UserSlots,
    /// Who is in which room across every hub, and the live hubs.
    pub presence: crate::presence::Presence,
    /// What `GET /metrics` serves (see [`crate::metrics`]).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The backend's connect, subscribe, publish and rpc proxies (see [`crate::hooks`]).
    pub proxies: crate::proxies::Proxies,
    /// Where this hub's webhook events go (`Off` without `webhook_url`).
    pub webhooks: crate::webhooks::Webhooks,
}
