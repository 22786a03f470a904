//! What one session holds while its connection lives: its identity and grants (once known), its
//! rate limit, its deadline, and its way back to the client (its outbox).

use std::net::IpAddr;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::pending::Pending;
use crate::auth::{Identity, UserSlot};
use crate::error::CloseReason;
use crate::hub::ClientId;
use crate::outbox::Recipient;
use crate::rate_limit::TokenBucket;
use crate::state::AppState;

pub(super) struct Session<'a> {
    pub state: &'a AppState,
    pub client_id: &'a ClientId,
    pub me: &'a Recipient,
    pub ip: IpAddr,
    pub bucket: TokenBucket,
    pub rejected_in_a_row: u32,
    /// `None` until the client has proved who it is (at once in `auth_mode = off`).
    pub identity: Option<Identity>,
    /// This connection's place under `max_connections_per_user`, held until the session ends.
    pub user_slot: Option<UserSlot>,
    /// When the connection must close, and why: no token by `auth_timeout`, then the token's
    /// expiry. One timer for both, since a connection is only ever waiting for one of them.
    pub deadline: Option<(tokio::time::Instant, CloseReason)>,
    /// Echo mode: where each message read goes instead of the chat protocol.
    pub echo: Option<mpsc::Sender<Message>>,
    /// Slow commands under way beside the read loop.
    pub pending: Pending<'a>,
}
