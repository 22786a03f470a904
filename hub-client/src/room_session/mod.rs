//! One subscribed room on the wire: which join to send on each connection (the first one, or
//! `since` the room's position), what the answers mean, when to re-join on the same connection
//! (a hole in the offsets, a new epoch, Redis back after `unavailable`, a publish in doubt to
//! check, the application caught up after its buffer filled), the [`Recovery`](crate::Recovery)
//! events that say how each re-join went, and the room's presence questions. The order of messages
//! is `room_stream`'s; publishes are the outbox's.
//!
//! What a session holds is in `state`; its steps in `session`, its joins in `joins`, its presence
//! questions in `presence`, the application's side in `app`. Each uses `state`, never this module.

mod app;
mod joins;
mod presence;
mod session;
mod state;

pub(crate) use state::RoomSession;
