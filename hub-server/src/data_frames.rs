//! A client's WebSocket as the session writes to it: data frames go straight into the socket's
//! [`WriteBuffer`], control frames (pings, the close) through tungstenite, which also reads.
//!
//! Why not everything through tungstenite: it formats each frame into a buffer of its own before
//! handing it on, and that buffer keeps the capacity of the largest frame it ever held, for the
//! life of the connection (issue 25: ~1.2 KiB per idle connection, set by the connect storm's
//! presence diffs). Here a data frame is formatted once, into the buffer that is freed after each
//! batch, and does not pay for tungstenite's frame path either.
//!
//! Order is kept: both writers add whole frames to the one buffer, and both run under the lock
//! of the socket's split halves (`&mut self`), never at once. tungstenite hands each frame on as
//! it gets it (`write_buffer_size` 0) unless the buffer is full, and then a control frame may
//! go out after data frames sent later, which the protocol allows. After a close (ours, or
//! tungstenite's reply to the client's) a data frame is refused, as tungstenite would.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::deflate::Rsv1Reader;
use crate::write_buffer::WriteBuffer;

/// The WebSocket of an upgraded connection, with its data frames written past tungstenite.
#[derive(Debug)]
pub struct DataFrames<S> {
    ws: WebSocketStream<Rsv1Reader<WriteBuffer<S>>>,
}

impl<S> DataFrames<S> {
    pub fn new(ws: WebSocketStream<Rsv1Reader<WriteBuffer<S>>>) -> Self {
        DataFrames { ws }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> DataFrames<S> {
    fn write_buffer(&mut self) -> &mut WriteBuffer<S> {
        self.ws.get_mut().get_mut()
    }
}

/// The frame a data message goes out as; a control message comes back as it was (tungstenite
/// writes those).
fn data_frame(msg: Message) -> Result<Frame, Message> {
    match msg {
        Message::Text(text) => Ok(Frame::message(text, OpCode::Data(Data::Text), true)),
        Message::Binary(data) => Ok(Frame::message(data, OpCode::Data(Data::Binary), true)),
        // A compressed frame (`deflate::compressed_message`): already whole, RSV1 set.
        Message::Frame(frame) if matches!(frame.header().opcode, OpCode::Data(_)) => Ok(frame),
        other => Err(other),
    }
}

impl<S> Stream for DataFrames<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.ws).poll_next(cx)
    }
}

impl<S> Sink<Message> for DataFrames<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = WsError;

    /// Ready once the buffer is below its bound (written by a flush through tungstenite, which
    /// ends in the buffer's own) and tungstenite has nothing stuck.
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.write_buffer().is_full() {
            ready!(Pin::new(&mut self.ws).poll_flush(cx))?;
        }
        Pin::new(&mut self.ws).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, msg: Message) -> Result<(), WsError> {
        match data_frame(msg) {
            Ok(frame) => self.write_buffer().buffer_frame(frame),
            Err(control) => {
                let close = matches!(control, Message::Close(_));
                Pin::new(&mut self.ws).start_send(control)?;
                if close {
                    self.write_buffer().close();
                }
                Ok(())
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.ws).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.ws).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

    use super::*;
    use crate::deflate::compressed_message;

    /// A hub-side socket over a pipe and the client's end of it.
    async fn pair() -> (
        DataFrames<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let io = Rsv1Reader::plain(WriteBuffer::new(ours));
        // As the hub builds it (`upgrade::socket_config`): tungstenite hands each frame on at once.
        let config = WebSocketConfig::default().write_buffer_size(0);
        let hub = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let client = WebSocketStream::from_raw_socket(theirs, Role::Client, None).await;
        (DataFrames::new(hub), client)
    }

    #[tokio::test]
    async fn data_and_control_frames_arrive_in_the_order_sent() {
        let (mut hub, mut client) = pair().await;
        hub.feed(Message::text("one")).await.expect("fed");
        hub.feed(Message::Ping(b"p".to_vec().into()))
            .await
            .expect("fed");
        hub.feed(Message::binary(vec![1u8, 2, 3]))
            .await
            .expect("fed");
        let long = "x".repeat(70_000);
        hub.feed(Message::text(long.clone())).await.expect("fed");
        hub.flush().await.expect("flushed");
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(client.next().await.expect("open").expect("a frame"));
        }
        assert_eq!(
            got,
            vec![
                Message::text("one"),
                Message::Ping(b"p".to_vec().into()),
                Message::binary(vec![1u8, 2, 3]),
                Message::text(long),
            ]
        );
    }

    #[tokio::test]
    async fn a_compressed_frame_goes_out_as_made() {
        let (mut hub, mut client) = pair().await;
        hub.send(compressed_message(vec![9u8, 8].into(), true))
            .await
            .expect("sent");
        // The client (not agreeing to compression) fails it for its RSV1 bit: proof the bit
        // went out as the frame had it.
        let got = client.next().await.expect("open");
        assert!(got.is_err(), "{got:?}");
    }

    #[tokio::test]
    async fn nothing_goes_after_the_close_and_the_buffer_is_freed() {
        let (mut hub, mut client) = pair().await;
        hub.send(Message::text("last")).await.expect("sent");
        let close = CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        };
        hub.send(Message::Close(Some(close))).await.expect("sent");
        let after = hub.send(Message::text("after")).await;
        assert!(
            matches!(after, Err(WsError::Protocol(_))),
            "a data frame after the close: {after:?}"
        );
        assert_eq!(hub.write_buffer().unwritten(), 0);
        assert_eq!(
            client.next().await.expect("open").expect("a frame"),
            Message::text("last")
        );
        let closing = client.next().await.expect("open").expect("a frame");
        assert!(matches!(closing, Message::Close(Some(_))), "{closing:?}");
    }
}
