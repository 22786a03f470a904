//! Webhooks: the backend learns what happens in the cluster — `room_occupied`, `room_vacated`,
//! `member_added`, `member_removed`, `client_disconnected` — each event once for the cluster, at
//! least once, in order. A hub emits ([`queue::Webhooks::emit`]) without waiting; events wait in
//! a Redis stream ([`queue`]) until one sender for the whole cluster ([`sender`]) has a 2xx for
//! them.

pub mod event;
mod keys;
pub mod queue;
pub mod sender;
pub mod start;

pub use event::{Event, EventName};
pub use keys::Keys;
pub use queue::{Counters, Store, Webhooks};
pub use sender::{Sender, Source};
pub use start::{Running, start};
