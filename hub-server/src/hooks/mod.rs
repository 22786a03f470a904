//! Hooks back into the team's backend: the signed, bounded HTTP client ([`backend`]) the proxies
//! and the webhooks share, and how requests are signed ([`sign`]); the four proxies — who a
//! client is ([`connect`]), whether it may join ([`subscribe`]) or publish ([`publish`]), and the
//! answers to its calls ([`rpc`]) — each a request, an answer and what the answer means (the
//! handle that makes the calls and counts them is [`crate::proxies`]).

mod answer;
pub mod backend;
pub mod connect;
pub mod publish;
pub mod rpc;
pub mod sign;
pub mod subscribe;

pub use answer::Refusal;
pub use backend::{Backend, HookError};
