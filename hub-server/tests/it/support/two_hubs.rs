//! The set-up most cross-hub tests start from: a fresh redis-server, two hubs bridged through it,
//! and a few clients on each.

use super::hub::HubBuilder;
use super::{Client, Hub, RedisServer};

pub struct TwoHubs {
    pub redis: RedisServer,
    pub a: Hub,
    pub b: Hub,
}

impl TwoHubs {
    /// `hub-a` and `hub-b` with default settings.
    pub async fn start() -> Self {
        Self::start_named(["hub-a", "hub-b"], |b| b).await
    }

    /// Hubs called `names`, each built by `configure` from a builder that already has the Redis.
    pub async fn start_named(
        names: [&str; 2],
        configure: impl Fn(HubBuilder) -> HubBuilder,
    ) -> Self {
        let redis = RedisServer::start().await;
        let a = configure(Hub::builder(names[0]).redis(&redis))
            .start()
            .await;
        let b = configure(Hub::builder(names[1]).redis(&redis))
            .start()
            .await;
        TwoHubs { redis, a, b }
    }
}

/// `N` clients of `hub`, welcomed, in connection order.
pub async fn connect_n<const N: usize>(hub: &Hub) -> [Client; N] {
    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        clients.push(Client::connect(hub).await);
    }
    clients
        .try_into()
        .unwrap_or_else(|_| unreachable!("N clients were connected"))
}

/// A client of `hub` that joined `room`.
pub async fn member(hub: &Hub, room: &str) -> Client {
    let mut client = Client::connect(hub).await;
    client.join(room).await;
    client
}
