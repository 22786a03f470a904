//! What the integration tests share: real processes (redis-server, hub-server), a TCP proxy that
//! breaks connections, HS256 tokens, and where the binaries are.

pub mod bins;
pub mod hub;
pub mod jwt;
pub mod procs;
pub mod proxy;
pub mod redis;
