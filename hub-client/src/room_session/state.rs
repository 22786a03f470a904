//! What a room session holds between events: its stream, the application's side, the join in
//! flight and why it was sent, the re-join wanted next, the presence questions waiting, and how
//! the room ended if it did; with the constructor and the questions others ask of it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::app::AppSide;
use crate::backoff::Backoff;
use crate::bounded_set::BoundedSet;
use crate::error::HubError;
use crate::events::RecoveryCause;
use crate::link::Link;
use crate::message::Position;
use crate::presence::Presence;
use crate::room_queue::RoomQueue;
use crate::room_stream::RoomStream;

pub(crate) struct RoomSession {
    pub id: u64,
    pub name: String,
    pub(super) history: Option<u32>,
    pub(super) stream: RoomStream,
    pub(super) app: AppSide,
    pub(super) ever_joined: bool,
    /// The hub refused the room: publishes fail with this.
    pub(super) failed: Option<HubError>,
    /// The room ended (unsubscribed, client closed): publishes fail with this.
    pub(super) ended: Option<HubError>,
    pub(super) joined_gen: Option<u64>,
    pub(super) joining: Option<Joining>,
    /// A re-join asked for while another was in flight.
    pub(super) want: Option<Reason>,
    pub(super) hole_retries: u32,
    pub(super) retry: Backoff,
    pub(super) presence: Vec<PresenceWaiter>,
}

impl RoomSession {
    pub(crate) fn new(
        id: u64,
        name: String,
        history: Option<u32>,
        since: Option<&Position>,
        queue: Arc<RoomQueue>,
        max_held: usize,
        dedupe: usize,
    ) -> Self {
        let mut stream = RoomStream::new(max_held);
        if let Some(p) = since {
            stream.set_position(p);
        }
        RoomSession {
            id,
            name,
            history: history.filter(|h| *h > 0),
            stream,
            app: AppSide {
                queue,
                seen: BoundedSet::new(dedupe),
                counting: false,
                replayed: 0,
            },
            ever_joined: false,
            failed: None,
            ended: None,
            joined_gen: None,
            joining: None,
            want: None,
            hole_retries: 0,
            retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(10)),
            presence: Vec::new(),
        }
    }

    pub(crate) fn position(&self) -> Option<Position> {
        self.stream.position()
    }

    /// Why publishes and questions of this room fail at once, if they do.
    pub(crate) fn refusal(&self) -> Option<HubError> {
        self.ended.clone().or_else(|| self.failed.clone())
    }

    /// Joined on the current connection.
    pub(crate) fn joined_now(&self, link: &Link<'_>) -> bool {
        self.ended.is_none() && link.generation().is_some() && self.joined_gen == link.generation()
    }

    /// Joined on connection `generation` and not ended (its publishes may go).
    pub(crate) fn joined_on(&self, generation: u64) -> bool {
        self.ended.is_none() && self.joined_gen == Some(generation)
    }

    pub(crate) fn queue(&self) -> &RoomQueue {
        &self.app.queue
    }
}

/// Why a join was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Subscribe,
    Reconnect,
    Resume,
    Gap,
    Epoch,
    /// After `epoch_changed`: the new epoch read from its start.
    EpochStart,
    Retry,
    Lag,
    Probe,
}

impl Reason {
    pub(super) fn cause(self) -> RecoveryCause {
        match self {
            Reason::Subscribe | Reason::Reconnect => RecoveryCause::Reconnect,
            Reason::Resume => RecoveryCause::Resume,
            Reason::Gap => RecoveryCause::Gap,
            Reason::Epoch | Reason::EpochStart => RecoveryCause::Epoch,
            Reason::Retry => RecoveryCause::Retry,
            Reason::Lag => RecoveryCause::Lag,
            Reason::Probe => RecoveryCause::Probe,
        }
    }

    /// Causes the application hears about even when nothing was lost.
    pub(super) fn reported(self) -> bool {
        matches!(
            self,
            Reason::Reconnect | Reason::Resume | Reason::Gap | Reason::Epoch | Reason::Retry
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JoinKind {
    /// The subscription's first join (with `history` if asked).
    First,
    /// A re-join without a position (a hub keeping no history).
    Plain,
    Since,
}

#[derive(Debug)]
pub(super) struct Joining {
    pub(super) kind: JoinKind,
    pub(super) reason: Reason,
    pub(super) sent_at: Instant,
}

/// A question waiting for its answer.
pub(super) struct PresenceWaiter {
    pub(super) id: u64,
    /// The connection it was asked on.
    pub(super) sent_gen: Option<u64>,
    pub(super) reply: oneshot::Sender<Result<Presence, HubError>>,
}
