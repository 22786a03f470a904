//! `hub-bench c250k`: a quarter of a million live connections over many hubs on one Redis (issue
//! 25, DESIGN section 19). The coordinator ([`coordinator`]) starts worker processes
//! ([`worker`], each holding at most an open-file limit's connections on one thread, sharing
//! [`worker_state`], every connection a small task of [`conn`] over a minimal WebSocket codec,
//! [`ws`]; the flags both take are in [`options`]), then drives the phases through the hubs'
//! server API ([`api`]): everyone connected and in two rooms, a broadcast to all, a message to the
//! common room, personal messages at a fixed rate with one hub killed meanwhile — its clients
//! reconnect elsewhere with jittered backoff ([`backoff`]) and recover with `join` + `since` — and
//! the final count of what each connection got in each room ([`track`]).

pub mod api;
pub mod backoff;
pub mod conn;
pub mod control;
pub mod coordinator;
pub mod frames;
pub mod options;
pub mod outcome;
pub mod schedule;
pub mod token;
pub mod track;
pub mod worker;
pub mod worker_state;
pub mod ws;
