//! The set-up of the slow-consumer tests: on one hub, `sender` floods a room that `fast` reads
//! and `slow` never reads again once joined.

use super::two_hubs::member;
use super::{Client, Hub, room};

pub struct Flood {
    pub room: String,
    pub sender: Client,
    pub fast: Client,
    pub slow: Client,
}

impl Flood {
    /// Three clients of `hub` in a fresh room (a hub built with [`HubBuilder::unlimited`], so that
    /// the flood is not rate limited: the slow consumer is what is under test).
    ///
    /// [`HubBuilder::unlimited`]: super::hub::HubBuilder::unlimited
    pub async fn join(hub: &Hub) -> Self {
        let room = room("flood");
        Flood {
            sender: member(hub, &room).await,
            fast: member(hub, &room).await,
            slow: member(hub, &room).await,
            room,
        }
    }
}
