//! The client's messages as the session reads them: each compressed one inflated (bounded by the
//! message limit) with a pooled inflater, in the order [`super::rsv1`] noted their kinds.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::inflate::{InflateError, Inflaters};
use super::rsv1::{Kind, Kinds};

/// What a connection that agreed to compression needs to read its client's messages.
#[derive(Debug)]
pub struct Inflating {
    pub(super) kinds: Arc<Kinds>,
    pub(super) inflaters: Arc<Inflaters>,
    /// `max_message_bytes`: the most a message may inflate to (and a plain one may be; the socket
    /// lets compressed ones be slightly longer, see `upgrade`).
    pub(super) max: usize,
}

/// A compressed message that does not inflate: an [`io::Error`] of kind `InvalidData` wrapping
/// this, so the read loop can tell it from a broken socket (close 1007, not a silent drop).
#[derive(Debug, thiserror::Error)]
#[error("compressed message is not valid deflate data")]
pub struct Corrupt;

impl Corrupt {
    /// Whether a read error is this one.
    pub fn is(err: &WsError) -> bool {
        matches!(err, WsError::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<Corrupt>()))
    }
}

/// The session's side of the socket: the messages tungstenite reads, inflated when they came
/// compressed. Without compression it passes everything on as it is.
#[derive(Debug)]
pub struct Inbound<S> {
    inner: S,
    inflating: Option<Inflating>,
}

impl<S> Inbound<S> {
    pub fn new(inner: S, inflating: Option<Inflating>) -> Self {
        Inbound { inner, inflating }
    }
}

impl Inflating {
    fn take(&self, message: Message) -> Result<Message, WsError> {
        let Some(kind) = self.kinds.next() else {
            // Cannot happen (every data message's first frame passed the reader): fail the
            // connection rather than guess.
            return Err(WsError::Io(io::Error::other("message kinds out of step")));
        };
        let too_big = |size| {
            WsError::Capacity(CapacityError::MessageTooLong {
                size,
                max_size: self.max,
            })
        };
        match (kind, message) {
            (Kind::Plain, message) if message.len() > self.max => Err(too_big(message.len())),
            (Kind::Plain, message) => Ok(message),
            (Kind::Deflated { text }, Message::Binary(payload)) => {
                let inflated = match self.inflaters.inflate(&payload, self.max) {
                    Ok(inflated) => Bytes::from(inflated),
                    Err(InflateError::TooBig) => return Err(too_big(self.max + 1)),
                    Err(InflateError::Corrupt) => {
                        return Err(WsError::Io(io::Error::new(
                            io::ErrorKind::InvalidData,
                            Corrupt,
                        )));
                    }
                };
                Ok(match text {
                    true => Message::Text(Utf8Bytes::try_from(inflated)?),
                    false => Message::Binary(inflated),
                })
            }
            // The reader made every compressed message binary.
            (Kind::Deflated { .. }, _) => {
                Err(WsError::Io(io::Error::other("message kinds out of step")))
            }
        }
    }
}

impl<S> Stream for Inbound<S>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        match (next, &self.inflating) {
            (Poll::Ready(Some(Ok(message @ (Message::Text(_) | Message::Binary(_))))), Some(i)) => {
                Poll::Ready(Some(i.take(message)))
            }
            (next, _) => next,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

    use super::*;
    use crate::deflate::{Pools, Rsv1Reader, compressed_message};

    fn fragment(first: bool, last: bool, payload: Bytes) -> Message {
        let header = FrameHeader {
            is_final: last,
            rsv1: first,
            opcode: OpCode::Data(if first { Data::Text } else { Data::Continue }),
            ..FrameHeader::default()
        };
        Message::Frame(Frame::from_payload(header, payload))
    }

    /// A real tungstenite client and server over a pipe, the reader in front of the server.
    #[tokio::test]
    async fn compressed_messages_are_inflated_in_order_within_the_limit() {
        let pools = Pools::new(1);
        let z = |m: &[u8]| pools.deflaters.compress(15, m).expect("compressed");
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (io, kinds) = Rsv1Reader::deflate(ours);
        let server = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(theirs, Role::Client, None).await;
        let inflating = Inflating {
            kinds,
            inflaters: pools.inflaters.clone(),
            max: 1000,
        };
        let mut inbound = Inbound::new(server, Some(inflating));

        let long = z(b"a fragmented message, cut in two");
        let (head, tail) = long.split_at(long.len() / 2);
        for msg in [
            compressed_message(z(b"hello hello hello"), true),
            Message::text("plain"),
            compressed_message(z(&[0, 1, 2]), false),
            fragment(true, false, Bytes::copy_from_slice(head)),
            Message::Ping(Bytes::from_static(b"p")),
            fragment(false, true, Bytes::copy_from_slice(tail)),
            compressed_message(z(&[b'x'; 1001]), true),
            compressed_message(Bytes::from_static(&[0xff, 0xff]), true),
            compressed_message(z(&[0xc3, 0x28]), true),
            Message::text("y".repeat(1001)),
            compressed_message(z(&[b'x'; 1000]), true),
        ] {
            client.send(msg).await.expect("client sends");
        }
        let mut next = async || inbound.next().await.expect("a message");
        assert_eq!(
            next().await.expect("ok"),
            Message::text("hello hello hello")
        );
        assert_eq!(next().await.expect("ok"), Message::text("plain"));
        assert_eq!(next().await.expect("ok"), Message::binary(vec![0, 1, 2]));
        assert!(matches!(next().await, Ok(Message::Ping(_))));
        assert_eq!(
            next().await.expect("ok"),
            Message::text("a fragmented message, cut in two")
        );
        let too_big = next().await;
        assert!(
            matches!(
                too_big,
                Err(WsError::Capacity(CapacityError::MessageTooLong {
                    max_size: 1000,
                    ..
                }))
            ),
            "{too_big:?}"
        );
        let corrupt = next().await.expect_err("not deflate");
        assert!(Corrupt::is(&corrupt), "{corrupt:?}");
        assert!(
            matches!(next().await, Err(WsError::Utf8(_))),
            "inflated, then not UTF-8"
        );
        assert!(
            matches!(next().await, Err(WsError::Capacity(_))),
            "a plain message is held to the limit too"
        );
        assert_eq!(
            next().await.expect("ok").len(),
            1000,
            "at the limit is fine"
        );
    }
}
