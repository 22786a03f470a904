//! hub-bench: a load tool for WebSocket fan-out hubs — realtime-hub's JSON protocol and Socket.IO —
//! measuring deliveries/s, latency from the scheduled send time, loss/duplicates/reorders, CPU per
//! delivery and memory per idle connection.

pub mod args;
pub mod backend;
pub mod c250k;
pub mod client;
pub mod eio;
pub mod error;
pub mod filler;
pub mod idle;
pub mod load;
pub mod load_shared;
pub mod load_sse;
pub mod payload;
pub mod procstat;
pub mod redisstat;
pub mod report;
pub mod rooms;
pub mod tracker;
pub mod wire;
