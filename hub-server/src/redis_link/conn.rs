//! A connection to the configured Redis, whichever kind it is: [`Conn`] speaks `ConnectionLike`
//! (commands, pipelines, scripts) either way. On a cluster, redis-rs routes each command by its
//! key and follows MOVED / ASK; a pipeline goes whole to the node of its first key. (The bridge,
//! which must not wait on one node for another, talks to each node on a connection of its own:
//! see [`topology`](super::topology).)

use std::future::Future;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::io_thread::IoThread;

/// A connection to the configured Redis; cheap to clone (every variant is a handle).
#[derive(Clone)]
pub enum Conn {
    Multiplexed(MultiplexedConnection),
    Managed(Managed),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Multiplexed(_) => "Conn::Multiplexed",
            Conn::Managed(_) => "Conn::Managed",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Multiplexed(c) => c.req_packed_command(cmd),
            Conn::Managed(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Multiplexed(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Managed(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Multiplexed(c) => c.get_db(),
            Conn::Managed(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A `ConnectionManager` whose every request runs on the Redis I/O thread. redis-rs makes the new
/// connection after an outage where the request that found the old one broken runs: run on the
/// hub's runtime, that put this connection (the presence heartbeat's among others) back behind
/// the hub's sessions after the first outage. A request costs a task on the I/O thread and a
/// copy of its command; the requests that take this connection are one-off ones, not messages.
#[derive(Clone)]
pub struct Managed {
    conn: ConnectionManager,
    io: IoThread,
}

impl Managed {
    pub(super) fn new(conn: ConnectionManager, io: IoThread) -> Self {
        Managed { conn, io }
    }

    /// `request` made with this connection, run on the I/O thread.
    fn on_io_thread<'a, T, F>(
        &self,
        request: impl FnOnce(ConnectionManager) -> F,
    ) -> RedisFuture<'a, T>
    where
        F: Future<Output = RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let io = self.io.clone();
        let work = request(self.conn.clone());
        Box::pin(async move { io.run(work).await })
    }
}

impl ConnectionLike for Managed {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let cmd = cmd.clone();
        self.on_io_thread(|mut conn| async move { conn.req_packed_command(&cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let pipeline = pipeline.clone();
        self.on_io_thread(|mut conn| async move {
            conn.req_packed_commands(&pipeline, offset, count).await
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}
