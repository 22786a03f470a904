//! The set-up of the slow-consumer tests: on one hub, `sender` floods a room that `fast` reads
//! and `slow` never reads again once joined.

use super::hub::HubBuilder;
use super::two_hubs::member;
use super::{Client, Hub, room};

pub struct Flood {
    pub room: String,
    pub sender: Client,
    pub fast: Client,
    pub slow: Client,
}

impl Flood {
    /// Starts the hub `builder` describes, with its server API (for `/metrics`) and without a
    /// rate limit (the flood must not be limited: the slow consumer is what is under test), and
    /// puts three clients of it in a fresh room.
    pub async fn start(builder: HubBuilder) -> (Hub, Self) {
        let hub = builder.api(crate::api::KEY).unlimited().start().await;
        let flood = Self::join(&hub).await;
        (hub, flood)
    }

    async fn join(hub: &Hub) -> Self {
        let room = room("flood");
        Flood {
            sender: member(hub, &room).await,
            fast: member(hub, &room).await,
            slow: member(hub, &room).await,
            room,
        }
    }
}
