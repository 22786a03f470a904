#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! The public surface is re-exported at the crate root. Inside: `client` (the handle) and
//! `subscription` (rooms as streams) talk to `driver` (the client's one task: connection life,
//! inbound frames, commands); `room_session` (joins and answers per room) keeps its order in
//! `room_stream` and hands messages to the application through `room_queue`; `outbox` owns
//! publishes and sees a connection only as a `wire`; `connection`, `frame`, `token`, `backoff`,
//! `pacer`, `timers` and `bounded_set` are the small parts they are built from. Each uses only
//! what is below it, down to the wire; this root only declares and re-exports. [`api`] is a
//! client of the hub's server API.

#[cfg(feature = "api")]
pub mod api;
mod backoff;
mod bounded_set;
mod client;
mod connection;
mod driver;
mod error;
mod events;
mod frame;
mod link;
mod message;
mod options;
mod outbox;
mod pacer;
mod presence;
mod room_queue;
mod room_session;
mod room_stream;
mod subscription;
mod timers;
mod token;
mod wire;

pub use client::{ClientEvents, HubClient};
pub use error::{ErrorCode, HubError};
pub use events::{
    ClientEvent, ConnectionInfo, JoinCause, Joined, Recovery, RecoveryCause, RoomEvent, State,
    StateChange, TokenRenewed,
};
pub use message::{Ack, Broadcast, Message, Position, User};
pub use options::ClientOptions;
pub use presence::{Member, Presence, PresenceDiff, PresenceUser};
pub use subscription::{Room, SubscribeOptions, Subscription};
pub use token::{Token, TokenResult};
