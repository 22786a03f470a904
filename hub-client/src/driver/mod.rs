//! The client's one task: it owns the connection, every room session, the outbox and the timers,
//! and does one thing at a time, so nothing is shared and no lock is taken. It waits on what can
//! happen next — a command from a handle, a frame from the hub, the connection opening, the token
//! provider answering, a subscription's notice, the next timer — and never on the application:
//! events go into bounded buffers that refuse rather than block.
//!
//! The driver's state and loop are in `task`, what the handles send and see in `channels`; the
//! connection's life (connect, welcome, close, retry, refresh) is in `lifecycle`, the hub's frames
//! in `inbound`, the handles' commands in `commands`. Each of these uses `task` and `channels`,
//! never this module.

mod channels;
mod commands;
mod inbound;
mod lifecycle;
mod task;

pub(crate) use channels::{Channels, Command};
pub(crate) use task::Driver;
