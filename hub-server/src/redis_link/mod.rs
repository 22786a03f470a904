//! The Redis connection layer every Redis user of the hub shares — the bridge, the history, presence
//! and the server API: which Redis ([`RedisTarget`]: one server or a cluster), connections of each
//! kind ([`Conn`]), reconnecting with backoff, loading scripts, and cluster routing. It knows
//! nothing of rooms, messages or hubs: those are its users' business.

mod backoff;
mod cluster;
mod conn;
mod handle;
mod io_thread;
mod lazy;
mod node_connect;
mod pubsub;
mod reconnect;
mod scripts;
mod target;
mod topology;

pub use backoff::Backoff;
pub use cluster::{is_cluster_transient, key_slot};
pub use conn::Conn;
pub use handle::{BadRedisUrl, Redis};
pub use lazy::LazyConn;
pub use pubsub::{numsub, subscribe, unsubscribe};
pub use reconnect::pause;
pub use scripts::load_script;
pub use target::RedisTarget;
pub use topology::{Node, Topology};
