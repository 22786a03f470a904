//! Hooks back into the team's backend: the signed, bounded HTTP client ([`backend`]) the proxies
//! (connect, subscribe, publish, rpc) and the webhooks share, and how requests are signed
//! ([`sign`]).

pub mod backend;
pub mod sign;

pub use backend::{Backend, HookError};
