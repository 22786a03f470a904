//! The handles' side of the driver: the commands they send it, the status they watch, the events
//! they read, and the count of publishes not settled yet.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::error::HubError;
use crate::events::{ClientEvent, ConnectionInfo, State};
use crate::message::Position;
use crate::outbox::Reply;
use crate::presence::Presence;
use crate::room_queue::RoomQueue;

/// What the handles can see of the driver at any time.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub state: State,
    pub connection: Option<ConnectionInfo>,
    /// Why the client closed for good, when the hub made it.
    pub error: Option<HubError>,
}

/// The handles' ends of the driver's channels.
pub(crate) struct Channels {
    pub commands: mpsc::UnboundedSender<Command>,
    pub status: watch::Receiver<Status>,
    /// Never read: each `events()` stream is a `resubscribe` of it, and ends when the driver
    /// (the only sender) does.
    pub events: broadcast::Receiver<ClientEvent>,
    pub queued: Arc<AtomicUsize>,
}

/// What the handles ask of the driver.
pub(crate) enum Command {
    Start,
    Subscribe {
        room: String,
        history: Option<u32>,
        since: Option<Position>,
        reply: oneshot::Sender<Result<(u64, Arc<RoomQueue>), HubError>>,
    },
    Unsubscribe {
        session: u64,
        done: oneshot::Sender<()>,
    },
    Publish {
        session: u64,
        content: String,
        reply: Reply,
    },
    Presence {
        session: u64,
        reply: oneshot::Sender<Result<Presence, HubError>>,
    },
    Position {
        session: u64,
        reply: oneshot::Sender<Option<Position>>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}
