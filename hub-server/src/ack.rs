//! A promise to tell a message's sender where it landed: an `{"type":"ack",…}` frame for a client,
//! or the answer to a server API call. Whoever finishes with the message (the publisher once Redis
//! stored it, local delivery when there is no history) keeps the promise, once.

use tokio::sync::{mpsc, oneshot};

use crate::error::ProtocolError;
use crate::protocol::Frame;

/// Where a message landed in its room's history (nothing for a broadcast, a room without history,
/// or a message stored while Redis was down and the sender already told).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAt {
    pub offset: Option<u64>,
    pub epoch: Option<String>,
}

impl StoredAt {
    pub fn nowhere() -> Self {
        StoredAt {
            offset: None,
            epoch: None,
        }
    }
}

/// Who waits to hear: a client (its queue held weakly, so a message waiting out an outage does
/// not keep a closed client's writer alive) with its `ref`, or a server API call.
#[derive(Debug)]
pub enum Ack {
    Client {
        to: mpsc::WeakSender<Frame>,
        reference: String,
        id: String,
    },
    Api(oneshot::Sender<Result<StoredAt, ProtocolError>>),
}

impl Ack {
    pub fn send(self, stored: StoredAt) {
        match self {
            Ack::Client { to, reference, id } => {
                if let Some(to) = to.upgrade() {
                    // A full queue means the client is being closed as a slow consumer anyway.
                    let _ = to.try_send(Frame::ack(&reference, &id, stored.offset));
                }
            }
            Ack::Api(answer) => {
                let _ = answer.send(Ok(stored));
            }
        }
    }

    /// The message did not make it: an error (carrying the client's `ref`).
    pub fn fail(self, err: &ProtocolError) {
        match self {
            Ack::Client { to, reference, .. } => {
                if let Some(to) = to.upgrade() {
                    let _ = to.try_send(Frame::error_for(err, Some(&reference)));
                }
            }
            Ack::Api(answer) => {
                let _ = answer.send(Err(err.clone()));
            }
        }
    }
}
