//! A local message on its way to Redis, as the hub hands it to the bridge's publisher.

use crate::ack::Ack;
use crate::hub::ClientId;
use crate::protocol::Frame;

use super::channels::Target;

#[derive(Debug)]
pub struct Outgoing {
    pub target: Target,
    /// The message id (also inside the frame): how this hub recognizes it when it comes back.
    pub id: String,
    /// The chat frame as the sender's session built it (no offset yet).
    pub frame: Frame,
    pub sender: ClientId,
    /// Already delivered to this hub's clients (history off, a broadcast, or Redis down when it
    /// was sent); otherwise this hub delivers it when it comes back from Redis, in room order.
    pub delivered_locally: bool,
    /// Append it to the room's history in the same atomic step as the publish.
    pub store: bool,
    pub ack: Option<Ack>,
}
