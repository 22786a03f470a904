//! The hub: who is connected, who is in which room, and local delivery.
//!
//! [`Hub`] is a cheap cloneable handle (no global state) over one lock-protected [`state`]. Each
//! concern is a file of its own: [`registry`] (clients arrive and leave, kicks), [`membership`]
//! (joins, leaves, a join's replay buffer), [`delivery`] (frames to a room's members, skipping
//! what a replay already gave), [`room_changes`] (the rooms the bridge must subscribe to), and
//! [`room_users`] / [`presence`] (the local half of presence). Delivery takes a read lock, hands
//! each recipient a shared `Frame` with `try_send` (never `.await`), and flags a full queue as a
//! slow consumer without waiting for it. Cross-hub traffic is the bridge's business: the hub only
//! tells it which rooms have local members.

mod delivery;
mod handle;
mod members;
mod membership;
mod presence;
mod registry;
mod room_changes;
pub mod room_users;
mod state;
#[cfg(test)]
mod tests;

pub use handle::{Counters, Hub};
pub use membership::Joined;
pub use registry::Newcomer;
pub use state::ClientId;
