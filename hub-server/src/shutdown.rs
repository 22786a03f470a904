//! A shutdown latch every long-running task races its awaits against (as mini-redis does). The
//! OS signal that begins it is `service_kit::signal::stop`.

use tokio::sync::watch;

/// The trigger: `begin` once, every [`Shutdown`] clone sees it.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn begin(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means the trigger is gone, which also means: stop.
        let _ = rx.wait_for(|begun| *begun).await;
    }

    pub fn has_begun(&self) -> bool {
        *self.0.borrow()
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
}
