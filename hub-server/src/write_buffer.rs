//! A client socket's write buffer, under tungstenite: frames gather here until the writer flushes
//! its batch (one write() per batch, as before), and the memory goes back to the allocator as soon
//! as a batch is written, so an idle connection holds no write buffer whatever burst it once had.
//!
//! Two writers fill it, frame by frame: tungstenite with the control frames (pings, pongs, the
//! close), and [`crate::data_frames`] with the hub's data frames, put here directly. tungstenite's
//! own buffer keeps the capacity of the largest frame it ever held, for good (issue 25: ~1.2 KiB
//! per idle connection after the connect storm's presence diffs), so no data frame goes through
//! it; the socket is built with its `write_buffer_size` at 0, so it hands each control frame to
//! this buffer at once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;

/// Unwritten bytes past which a write first drains the buffer into the socket: what one connection
/// holds unwritten at most (plus one frame) while its client reads slowly. tungstenite's
/// `write_buffer_size` was this bound before.
const HIGH_WATER: usize = 16 * 1024;

/// The socket with the buffer in front of its write side (reads pass straight through).
#[derive(Debug)]
pub struct WriteBuffer<S> {
    inner: S,
    buf: Vec<u8>,
    /// The bytes at the start of `buf` already written to `inner`.
    written: usize,
    /// A close frame went in (or is on its way, [`WriteBuffer::close`]): no data frame may follow.
    closed: bool,
}

impl<S> WriteBuffer<S> {
    pub fn new(inner: S) -> Self {
        WriteBuffer {
            inner,
            buf: Vec::new(),
            written: 0,
            closed: false,
        }
    }

    /// Bytes taken but not yet written to the socket.
    pub(crate) fn unwritten(&self) -> usize {
        self.buf.len() - self.written
    }

    /// Whether the next frame should wait until the buffer is written (a flush): past
    /// [`HIGH_WATER`] unwritten, as for tungstenite's frames.
    pub fn is_full(&self) -> bool {
        self.unwritten() >= HIGH_WATER
    }

    /// Refuses data frames from now on: a close frame has been sent, or handed to tungstenite.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Takes a data frame as it goes on the wire (a server's frames are not masked). After a close
    /// frame this refuses, as tungstenite refuses to send after closing.
    pub fn buffer_frame(&mut self, frame: Frame) -> Result<(), WsError> {
        if self.closed {
            return Err(WsError::Protocol(ProtocolError::SendAfterClosing));
        }
        self.forget_written();
        frame.format(&mut self.buf)
    }

    /// Part of the buffer went out and the socket then blocked: what went is dropped rather than
    /// kept in front of what comes, so the buffer stays within its bound.
    fn forget_written(&mut self) {
        if self.written > 0 {
            self.buf.drain(..self.written);
            self.written = 0;
        }
    }
}

impl<S: AsyncWrite + Unpin> WriteBuffer<S> {
    /// Writes everything buffered, then frees the buffer: a busy connection allocates one per
    /// batch (cheap beside the batch's write()), an idle one holds none.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

/// Whether `data` (what tungstenite writes at once: one frame) starts a close frame.
fn is_close_frame(data: &[u8]) -> bool {
    data.first().is_some_and(|b0| b0 & 0x0f == 0x8)
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteBuffer<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteBuffer<S> {
    /// Takes all of `data` (a whole frame, from tungstenite), unless more than [`HIGH_WATER`] is
    /// already waiting and the socket cannot take it: then nothing, until it can.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.unwritten() >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        this.forget_written();
        this.buf.extend_from_slice(data);
        if is_close_frame(data) {
            this.closed = true;
            // tungstenite writes its reply to a client's close while it reads, and nothing may
            // flush after that (the connection ends): the close goes out now, with what was
            // before it. A socket that cannot take it now is one the close timeout gives up on.
            let _ = this.poll_drain(cx);
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn writes_wait_for_the_flush_then_go_out_in_order_and_the_buffer_is_freed() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let mut socket = WriteBuffer::new(ours);
        socket.write_all(b"one ").await.expect("buffered");
        socket.write_all(b"two").await.expect("buffered");
        assert_eq!(socket.buf.len(), 7, "nothing written before the flush");
        socket.flush().await.expect("flushed");
        assert_eq!(socket.buf.capacity(), 0, "memory given back once written");
        let mut got = [0u8; 7];
        theirs.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"one two");
    }

    /// The reply to a client's close is written while tungstenite reads, and nothing flushes
    /// after it: it goes out at once, with what was buffered before it (Autobahn saw every
    /// client-initiated close end unclean without this).
    #[tokio::test]
    async fn a_close_frame_goes_out_without_a_flush() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let mut socket = WriteBuffer::new(ours);
        socket
            .write_all(&[0x81, 0x01, b'x'])
            .await
            .expect("buffered");
        socket
            .write_all(&[0x88, 0x02, 0x03, 0xe8])
            .await
            .expect("written");
        assert_eq!(
            socket.buf.capacity(),
            0,
            "written and freed without a flush"
        );
        let mut got = [0u8; 7];
        theirs.read_exact(&mut got).await.expect("read");
        assert_eq!(got, [0x81, 0x01, b'x', 0x88, 0x02, 0x03, 0xe8]);
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_holds_the_buffer_near_its_bound() {
        // The pipe takes 4 KiB, then blocks: the buffer fills to its bound, and a write past it
        // waits instead of growing the buffer.
        let (ours, mut theirs) = tokio::io::duplex(4096);
        let mut socket = WriteBuffer::new(ours);
        let frame = [7u8; 1000];
        let mut taken = 0;
        loop {
            let write = socket.write(&frame);
            match tokio::time::timeout(std::time::Duration::from_millis(50), write).await {
                Ok(n) => taken += n.expect("written"),
                Err(_) => break,
            }
            assert!(taken < 1 << 20, "the buffer never refused a write");
        }
        assert!(
            socket.unwritten() <= HIGH_WATER + frame.len(),
            "{} bytes waiting",
            socket.unwritten()
        );
        // Once the client reads, everything taken arrives, in order, whole.
        let reader = tokio::spawn(async move {
            let mut all = vec![0u8; taken];
            theirs.read_exact(&mut all).await.expect("read");
            all
        });
        socket.flush().await.expect("flushed");
        let all = reader.await.expect("reader");
        assert!(all.iter().all(|&b| b == 7));
        assert_eq!(socket.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn reads_pass_through() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut socket = WriteBuffer::new(ours);
        theirs.write_all(b"hello").await.expect("written");
        let mut got = [0u8; 5];
        socket.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"hello");
    }
}
