//! Starting and stopping webhooks with the hub: with `webhook_url` set, the appender (this hub's
//! events into the queue) and the sender (the cluster's queue to the backend, while this hub
//! holds the lease) run as two tasks; without it, nothing runs and emitting does nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::keys::Keys;
use super::queue::{self, Counters, LOCAL_QUEUE, Store, Webhooks};
use super::sender::{Sender, Source};
use crate::config::{Settings, webhook_uri};
use crate::hooks::Backend;
use crate::redis_link::Redis;
use crate::shutdown::Shutdown;

/// How long one webhook POST may take: a receiver may be slower than a proxy may (proxies wait
/// `proxy_timeout`, a client is waiting there); a batch not answered in time goes again.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Webhook POSTs in flight per hub: one sender posts one batch at a time; the second permit
/// lets a shutdown's last POST overlap a slow one without being refused as busy.
const IN_FLIGHT: usize = 2;

/// The running tasks, to stop them in order at shutdown.
pub struct Running {
    appender: JoinHandle<()>,
    sender: JoinHandle<()>,
    finish: oneshot::Sender<()>,
}

/// The handle to emit through, and the tasks when `webhook_url` is set. `settings` was validated:
/// the URL parses and the secret is there.
pub fn start(
    settings: &Settings,
    redis: Option<&Redis>,
    instance: String,
    shutdown: Shutdown,
) -> (Webhooks, Option<Running>) {
    let Some(url) = settings.webhook_url.as_deref() else {
        return (Webhooks::Off, None);
    };
    let url = match webhook_uri(url) {
        Ok(url) => url,
        Err(err) => {
            // Unreachable after validation; said rather than panicking.
            tracing::error!(%err, "webhooks off");
            return (Webhooks::Off, None);
        }
    };
    let counters = Arc::new(Counters::default());
    let (tx, rx) = mpsc::channel(LOCAL_QUEUE);
    let (store, source) = match redis {
        Some(redis) => {
            let keys = Keys::new(&settings.redis_prefix);
            (
                Store::Redis {
                    redis: redis.clone(),
                    keys: keys.clone(),
                },
                Source::Redis {
                    redis: redis.clone(),
                    keys,
                },
            )
        }
        None => {
            let memory = Arc::new(Mutex::new(VecDeque::new()));
            (Store::Memory(memory.clone()), Source::Memory(memory))
        }
    };
    let (finish, finished) = oneshot::channel();
    let appender = tokio::spawn(queue::append(rx, store, shutdown.clone(), finished));
    let sender = Sender {
        url,
        backend: Backend::new(settings.hook_secret.clone(), POST_TIMEOUT, IN_FLIGHT),
        post_timeout: POST_TIMEOUT,
        max_age: settings.webhook_max_age,
        instance,
        counters: counters.clone(),
        shutdown,
    };
    let sender = tokio::spawn(sender.run(source));
    tracing::info!(
        url = %settings.webhook_url.as_deref().unwrap_or_default(),
        "webhooks on"
    );
    let running = Running {
        appender,
        sender,
        finish,
    };
    (Webhooks::On { tx, counters }, Some(running))
}

impl Running {
    /// Once nothing emits any more (sessions closed, presence left the cluster): appends what is
    /// still waiting, then stops; the sender stops at shutdown by itself (a batch it was posting
    /// stays queued in Redis for another hub). Bounded by `deadline`.
    pub async fn stop(self, deadline: tokio::time::Instant) {
        let _ = self.finish.send(());
        if tokio::time::timeout_at(deadline, self.appender)
            .await
            .is_err()
        {
            tracing::warn!("webhook events still being queued at the end of the grace period");
        }
        let mut sender = self.sender;
        if tokio::time::timeout_at(deadline, &mut sender)
            .await
            .is_err()
        {
            sender.abort();
        }
    }
}
