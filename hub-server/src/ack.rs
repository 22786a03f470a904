//! A promise to tell a message's sender where it landed: an `{"type":"ack",…}` frame for a client,
//! or the answer to a server API call. Whoever finishes with the message (the publisher once Redis
//! stored it, local delivery when there is no history) keeps the promise, once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

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
    Api(ApiWaiter),
}

/// A server API call waiting to hear where its message was stored.
#[derive(Debug)]
pub struct ApiWaiter {
    answer: oneshot::Sender<Result<StoredAt, ProtocolError>>,
    handover: Arc<Handover>,
}

/// What the caller of a server API call waits on.
pub type ApiAnswer = oneshot::Receiver<Result<StoredAt, ProtocolError>>;

/// Who has the last word on a server API message when its caller stops waiting: the publisher,
/// by sending it to Redis first, or the caller, by withdrawing it first — then it is never sent,
/// so an answer "nothing was published" is true. Once sent, a message may be stored even if
/// Redis's reply never comes, so it can no longer be withdrawn.
#[derive(Debug, Default)]
pub struct Handover(AtomicU8);

const WAITING: u8 = 0;
const SENT: u8 = 1;
const WITHDRAWN: u8 = 2;

impl Handover {
    /// The publisher is about to send the message: false when the caller withdrew it first.
    pub fn sending(&self) -> bool {
        match self
            .0
            .compare_exchange(WAITING, SENT, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == SENT,
        }
    }

    /// Whether the caller withdrew the message (it was never sent, and never will be).
    pub fn withdrawn(&self) -> bool {
        self.0.load(Ordering::Acquire) == WITHDRAWN
    }

    /// The caller stops waiting: true when the message has not gone to Redis (and now never will).
    pub fn withdraw(&self) -> bool {
        match self
            .0
            .compare_exchange(WAITING, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == WITHDRAWN,
        }
    }
}

impl Ack {
    /// The promise for a server API call: the ack, what its caller waits on, and the caller's
    /// side of the handover.
    pub fn api() -> (Ack, ApiAnswer, Arc<Handover>) {
        let (answer, waiting) = oneshot::channel();
        let handover = Arc::new(Handover::default());
        let waiter = ApiWaiter {
            answer,
            handover: handover.clone(),
        };
        (Ack::Api(waiter), waiting, handover)
    }

    /// Whether the message may go to Redis now (false: its API caller withdrew it). Called by the
    /// publisher just before it sends; from then on the caller cannot withdraw it.
    pub fn may_send(&self) -> bool {
        match self {
            Ack::Client { .. } => true,
            Ack::Api(waiter) => waiter.handover.sending(),
        }
    }

    /// A server API call's handover (`None`: a client's message).
    pub fn handover(&self) -> Option<Arc<Handover>> {
        match self {
            Ack::Client { .. } => None,
            Ack::Api(waiter) => Some(waiter.handover.clone()),
        }
    }

    pub fn send(self, stored: StoredAt) {
        match self {
            Ack::Client { to, reference, id } => {
                if let Some(to) = to.upgrade() {
                    to.offer(&Frame::ack(&reference, &id, stored.offset));
                }
            }
            Ack::Api(waiter) => {
                let _ = waiter.answer.send(Ok(stored));
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
            Ack::Api(waiter) => {
                let _ = waiter.answer.send(Err(err.clone()));
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

    #[test]
    fn a_message_is_either_sent_or_withdrawn_never_both() {
        let first_sent = Handover::default();
        assert!(first_sent.sending());
        assert!(!first_sent.withdraw(), "too late: it may be stored");
        assert!(first_sent.sending() && !first_sent.withdrawn());
        let first_withdrawn = Handover::default();
        assert!(first_withdrawn.withdraw());
        assert!(!first_withdrawn.sending(), "withdrawn: never sent");
        assert!(first_withdrawn.withdraw() && first_withdrawn.withdrawn());
    }
}
