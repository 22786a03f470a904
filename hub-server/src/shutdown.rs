//! A shutdown latch every long-running task races its awaits against (as mini-redis does). The
//! OS signal that begins it is `service_kit::signal::stop`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A flag and the tasks waiting for it. Not a `watch` channel: every session's read loop holds a
/// wait for the connection's life, and a watch wait is ~180 bytes where this one is ~80.
#[derive(Debug, Default)]
struct Latch {
    begun: AtomicBool,
    notify: Notify,
}

/// The trigger: `begin` once, every [`Shutdown`] clone sees it. Dropping it begins it too.
#[derive(Debug)]
pub struct ShutdownTrigger(Arc<Latch>);

#[derive(Debug, Clone)]
pub struct Shutdown(Arc<Latch>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let latch = Arc::new(Latch::default());
    (ShutdownTrigger(latch.clone()), Shutdown(latch))
}

impl ShutdownTrigger {
    pub fn begin(&self) {
        self.0.begun.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }
}

impl Drop for ShutdownTrigger {
    /// A trigger gone means no one can stop the tasks any more: they stop now.
    fn drop(&mut self) {
        self.begin();
    }
}

impl Shutdown {
    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn wait(&self) {
        // Made before the flag is read: a `Notified` hears every `notify_waiters` from its
        // making on, so a `begin` between the read and the await is not missed.
        let notified = self.0.notify.notified();
        if self.has_begun() {
            return;
        }
        notified.await;
    }

    pub fn has_begun(&self) -> bool {
        self.0.begun.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_trigger() {
        let (trigger, shutdown) = channel();
        let other = shutdown.clone();
        assert!(!other.has_begun());
        let waiter = tokio::spawn(async move { other.wait().await });
        trigger.begin();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert!(shutdown.has_begun());
        shutdown.wait().await;
    }

    #[tokio::test]
    async fn a_dropped_trigger_stops_every_waiter() {
        let (trigger, shutdown) = channel();
        let waiter = tokio::spawn(async move { shutdown.wait().await });
        tokio::task::yield_now().await;
        drop(trigger);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }
}
