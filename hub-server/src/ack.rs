//! A promise to tell a message's sender where it landed: an `{"type":"ack",…}` frame for a client,
//! or the answer to a server API call. Whoever finishes with the message (the publisher once Redis
//! stored it, local delivery when there is no history) keeps the promise, once.

use tokio::sync::oneshot;

use crate::error::ProtocolError;
use crate::outbox::WeakRecipient;
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

/// Who waits to hear: a client (its outbox held weakly, so a message waiting out an outage does
/// not keep a closed client's writer alive) with its `ref`, or a server API call. An ack goes
/// through the client's outbox like any frame: one that finds the queue full closes the client as
/// a slow consumer — never a silent drop, which would leave a page showing a stored message as
/// unsent.
#[derive(Debug)]
pub enum Ack {
    Client {
        to: WeakRecipient,
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
                    to.offer(&Frame::ack(&reference, &id, stored.offset));
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
                    to.offer(&Frame::error_for(err, Some(&reference)));
                }
            }
            Ack::Api(answer) => {
                let _ = answer.send(Err(err.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CloseReason;
    use crate::outbox::{Drain, Recipient};

    fn client(queue: usize) -> (Recipient, Drain) {
        Recipient::new(queue, usize::MAX)
    }

    fn ack_for(to: &Recipient, reference: &str) -> Ack {
        Ack::Client {
            to: to.downgrade(),
            reference: reference.into(),
            id: "m1".into(),
        }
    }

    #[test]
    fn an_ack_reaches_the_client_with_its_offset() {
        let (me, mut rx) = client(4);
        ack_for(&me, "c1").send(StoredAt {
            offset: Some(7),
            epoch: Some("e".into()),
        });
        let frame = rx.try_recv().expect("the ack");
        assert!(rx.try_recv().is_none(), "nothing else");
        assert_eq!(
            frame.as_str(),
            r#"{"type":"ack","ref":"c1","id":"m1","offset":7}"#
        );
        assert_eq!(me.kick.reason(), None);
    }

    #[test]
    fn an_ack_that_finds_the_queue_full_closes_the_client_as_a_slow_consumer() {
        let (me, _rx) = client(1);
        assert!(me.offer(&Frame::pong()), "the one place in the queue");
        ack_for(&me, "c1").send(StoredAt::nowhere());
        assert_eq!(me.kick.reason(), Some(CloseReason::SlowConsumer));
        let (me, _rx) = client(1);
        assert!(me.offer(&Frame::pong()));
        ack_for(&me, "c2").fail(&ProtocolError::Unavailable);
        assert_eq!(
            me.kick.reason(),
            Some(CloseReason::SlowConsumer),
            "errors too"
        );
    }

    #[test]
    fn an_ack_for_a_client_gone_is_dropped_without_keeping_it() {
        let (me, rx) = client(1);
        let ack = ack_for(&me, "c1");
        drop(me);
        drop(rx);
        ack.send(StoredAt::nowhere());
    }
}
