//! The thread that reads and writes the hub's Redis sockets. Every connection is made here, so its
//! socket and the redis-rs task that drives it live on this thread's own runtime, never queued
//! behind the hub's sessions.
//!
//! Why: `redis_timeout` is meant to measure Redis. With the connections' tasks on the hub's
//! runtime, a hub with thousands of sessions runnable (a reconnect storm on a loaded box) read
//! replies Redis had sent at once only after `redis_timeout` had passed. The hub then dropped a
//! connection that was fine, and held its messages for the other hubs to resubscribe. Here, a reply
//! is read as it comes; the task that waits for it may still run late, but it then finds the reply
//! in hand (a timeout looks at its future before its clock).

use std::future::Future;
use std::sync::Arc;

use redis::{ErrorKind, RedisError, RedisResult};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A handle on the Redis I/O thread; cheap to clone. The thread ends, and the connections made on
/// it close, when the last handle is dropped.
#[derive(Clone)]
pub struct IoThread(Arc<Running>);

struct Running {
    handle: Handle,
    /// Dropped with the last handle: the thread's runtime then stops, on its own thread (a runtime
    /// cannot be dropped inside another one's tasks).
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for IoThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IoThread")
    }
}

impl IoThread {
    /// Starts the thread, with a single-threaded runtime of its own.
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("redis-io")
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("redis-io".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })?;
        Ok(IoThread(Arc::new(Running {
            handle,
            _stop: stop,
        })))
    }

    /// Runs `work` on the I/O thread: a connection it makes is read and written there, and so is
    /// one that redis-rs makes in it (a `ConnectionManager` reconnecting where its request runs).
    pub async fn run<T, F>(&self, work: F) -> RedisResult<T>
    where
        F: Future<Output = RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.0.handle.spawn(work).await.unwrap_or_else(|_| {
            Err(RedisError::from((
                ErrorKind::Io,
                "the redis I/O thread has stopped",
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_io_thread_and_the_thread_ends_with_its_last_handle() {
        let io = IoThread::start().expect("thread");
        let name = io
            .run(async { Ok(std::thread::current().name().map(String::from)) })
            .await
            .expect("ran");
        assert_eq!(name.as_deref(), Some("redis-io"));

        let handle = io.0.handle.clone();
        drop(io);
        // The runtime shuts down on its own thread; after that it takes no more work.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let task = handle.spawn(async {});
            if task.await.is_err() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the I/O thread still runs after its last handle was dropped"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
