//! The client protocol: room names ([`room`]), frames a client sends ([`command`]), and frames a
//! hub sends back ([`frame`] holds their bytes, [`outbound`] builds each kind).
//!
//! Outbound frames are serialized exactly once into a [`Frame`], whose bytes are shared (not
//! copied) by every recipient's queue and by the Redis envelope.

pub mod command;
pub mod frame;
pub mod outbound;
pub mod room;

pub use command::{Command, Replay};
pub use frame::Frame;
pub use outbound::{JoinOutcome, User};
pub use room::{DEFAULT_ROOM, Room};
