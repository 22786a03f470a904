//! The read side of permessage-deflate without forking tungstenite, which fails any frame with
//! RSV1 set: this reader sits between the upgraded socket and tungstenite and watches the client's
//! frame headers go by. On the first frame of a compressed message it clears RSV1 and makes the
//! opcode binary (so tungstenite neither refuses the frame nor checks compressed bytes as UTF-8),
//! and it notes every data message's [`Kind`], in order, for the session to inflate what
//! tungstenite assembles ([`super::inbound`]). Only byte 0 of such a header changes, in place.
//!
//! RSV1 on a continuation or a control frame is left set, and tungstenite fails the connection as
//! RFC 7692 6.1 wants; so is RSV1 on a connection that agreed no compression (nothing is watched).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How a client's data message came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    /// Compressed; `text` is the opcode it had before this reader made it binary.
    Deflated {
        text: bool,
    },
}

/// Kinds of data messages this reader has seen begin, oldest first, until the session takes them.
#[derive(Debug, Default)]
pub struct Kinds(Mutex<VecDeque<Kind>>);

/// tungstenite parses what it has read before it reads more (512 bytes at a time on a hub socket), so
/// the kinds not yet taken are a few hundred at most; this bound only stops a bug from growing it.
const MAX_UNTAKEN: usize = 4096;

impl Kinds {
    /// The kind of the next data message tungstenite hands out.
    pub fn next(&self) -> Option<Kind> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    fn push(&self, kind: Kind) -> io::Result<()> {
        let mut kinds = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kinds.len() >= MAX_UNTAKEN {
            return Err(io::Error::other("too many client messages not yet read"));
        }
        kinds.push_back(kind);
        Ok(())
    }
}

/// The upgraded socket as tungstenite reads it (writes pass straight through).
#[derive(Debug)]
pub struct Rsv1Reader<S> {
    inner: S,
    /// `None` on a connection without compression. Boxed: those pay one pointer, not the state.
    watch: Option<Box<HeaderWatch>>,
}

impl<S> Rsv1Reader<S> {
    /// A socket whose frames are passed on untouched (no compression agreed).
    pub fn plain(inner: S) -> Self {
        Rsv1Reader { inner, watch: None }
    }

    /// The socket under this reader (its write side is the connection's, untouched here).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// A socket on which compressed messages are let through, their kinds noted in the `Kinds`.
    pub fn deflate(inner: S) -> (Self, Arc<Kinds>) {
        let kinds = Arc::new(Kinds::default());
        let watch = HeaderWatch::new(kinds.clone());
        let reader = Rsv1Reader {
            inner,
            watch: Some(Box::new(watch)),
        };
        (reader, kinds)
    }
}

/// Where the reader is in the client's stream of frames.
#[derive(Debug)]
struct HeaderWatch {
    kinds: Arc<Kinds>,
    /// Header bytes of the current frame seen so far (0: the next byte starts a frame).
    seen: u8,
    /// The header's length once its second byte is known (2 + extended length + mask key).
    header_len: u8,
    /// Its second byte: the mask bit and the 7-bit length.
    len7: u8,
    /// The extended length, as its bytes go by.
    extended: u64,
    /// Payload bytes of the current frame still to pass.
    payload_left: u64,
}

impl HeaderWatch {
    fn new(kinds: Arc<Kinds>) -> Self {
        HeaderWatch {
            kinds,
            seen: 0,
            header_len: 2,
            len7: 0,
            extended: 0,
            payload_left: 0,
        }
    }

    /// Follows `bytes`, the next bytes from the client, rewriting byte 0 of compressed messages.
    fn watch(&mut self, bytes: &mut [u8]) -> io::Result<()> {
        let mut at = 0;
        while at < bytes.len() {
            if self.payload_left > 0 {
                let left = bytes.len() - at;
                let skip = usize::try_from(self.payload_left).map_or(left, |p| p.min(left));
                at += skip;
                self.payload_left -= skip as u64;
                continue;
            }
            match self.seen {
                0 => self.first_byte(&mut bytes[at])?,
                1 => {
                    self.len7 = bytes[at];
                    let extended = match bytes[at] & 0x7f {
                        126 => 2,
                        127 => 8,
                        _ => 0,
                    };
                    let mask = if bytes[at] & 0x80 != 0 { 4 } else { 0 };
                    self.header_len = 2 + extended + mask;
                }
                n if n < 2 + self.extended_len() => {
                    self.extended = (self.extended << 8) | u64::from(bytes[at]);
                }
                _ => {} // the mask key
            }
            self.seen += 1;
            at += 1;
            if self.seen >= 2 && self.seen == self.header_len {
                self.payload_left = match self.extended_len() {
                    0 => u64::from(self.len7 & 0x7f),
                    _ => self.extended,
                };
                self.seen = 0;
                self.extended = 0;
            }
        }
        Ok(())
    }

    fn extended_len(&self) -> u8 {
        match self.len7 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        }
    }

    /// Byte 0 of a frame: FIN, RSV1–3, opcode. Text (1) and binary (2) begin a message.
    fn first_byte(&mut self, byte: &mut u8) -> io::Result<()> {
        let opcode = *byte & 0x0f;
        if opcode != 1 && opcode != 2 {
            return Ok(());
        }
        let kind = if *byte & 0x40 != 0 {
            // Keep FIN, RSV2 and RSV3 (tungstenite refuses the last two); binary opcode.
            *byte = (*byte & 0xb0) | 0x02;
            Kind::Deflated { text: opcode == 1 }
        } else {
            Kind::Plain
        };
        self.kinds.push(kind)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rsv1Reader<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        match (read, &mut this.watch) {
            (Poll::Ready(Ok(())), Some(watch)) => {
                Poll::Ready(watch.watch(&mut buf.filled_mut()[before..]))
            }
            (read, _) => read,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rsv1Reader<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    use super::*;

    /// One frame as a client could send it, valid or not for tungstenite's later checks.
    #[derive(Debug, Clone)]
    struct RawFrame {
        /// FIN, RSV1–3 and the opcode.
        byte0: u8,
        mask: Option<[u8; 4]>,
        len: usize,
        /// 0: the shortest length encoding; 1: 16 bits, 2: 64 bits, when the length fits.
        width: u8,
    }

    impl RawFrame {
        fn write(&self, out: &mut Vec<u8>) {
            out.push(self.byte0);
            let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
            let len = self.len as u64;
            match (self.width, len) {
                (0, 0..=125) => out.push(mask_bit | len as u8),
                (0 | 1, 0..=0xffff) => {
                    out.push(mask_bit | 126);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                }
                _ => {
                    out.push(mask_bit | 127);
                    out.extend_from_slice(&len.to_be_bytes());
                }
            }
            if let Some(mask) = self.mask {
                out.extend_from_slice(&mask);
            }
            // Payload bytes that look like headers, to catch a reader that loses its place.
            out.extend((0..self.len).map(|i| [0xc1, 0x81, 0x7f, 0x7e][i % 4]));
        }
    }

    fn raw_frame() -> impl Strategy<Value = RawFrame> {
        let opcode = prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]);
        let len = prop_oneof![
            0..=130usize,
            Just(125usize),
            Just(126),
            Just(65_535),
            Just(65_536),
            0..70_000usize,
        ];
        (opcode, 0u8..16, any::<Option<[u8; 4]>>(), len, 0u8..3).prop_map(
            |(opcode, flags, mask, len, width)| RawFrame {
                byte0: (flags << 4) | opcode,
                mask,
                len,
                width,
            },
        )
    }

    /// What tungstenite's own header parser finds in `bytes`: each frame's header and payload.
    fn parse(bytes: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
        let mut cursor = Cursor::new(bytes);
        let mut frames = Vec::new();
        while (cursor.position() as usize) < bytes.len() {
            let (header, len) = FrameHeader::parse(&mut cursor)
                .expect("valid header")
                .expect("whole header");
            let start = cursor.position() as usize;
            let end = start + len as usize;
            frames.push((header, bytes[start..end].to_vec()));
            cursor.set_position(end as u64);
        }
        frames
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Cut anywhere, the stream comes out as tungstenite would read it with compression
        /// understood: the same frames and payloads, RSV1 gone from the first frame of each
        /// compressed message (made binary), and one kind per message, in order.
        #[test]
        fn the_reader_follows_tungstenites_framing(
            frames in prop::collection::vec(raw_frame(), 1..12),
            cuts in prop::collection::vec(1usize..5000, 1..40),
        ) {
            let mut input = Vec::new();
            for frame in &frames {
                frame.write(&mut input);
            }
            let sent = parse(&input);
            let (mut reader, kinds) = Rsv1Reader::deflate(());
            let watch = reader.watch.as_mut().expect("watching");
            let mut output = input.clone();
            let mut rest = &mut output[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at_mut((*cut).min(rest.len()));
                watch.watch(now).expect("within bounds");
                rest = later;
            }
            let read = parse(&output);
            prop_assert_eq!(read.len(), sent.len());
            let mut expected_kinds = Vec::new();
            for ((before, payload_before), (after, payload_after)) in sent.iter().zip(&read) {
                prop_assert_eq!(payload_before, payload_after);
                prop_assert_eq!(
                    (before.is_final, before.rsv2, before.rsv3, before.mask),
                    (after.is_final, after.rsv2, after.rsv3, after.mask)
                );
                let starts = matches!(before.opcode, OpCode::Data(Data::Text | Data::Binary));
                match (starts, before.rsv1) {
                    (true, true) => {
                        expected_kinds.push(Kind::Deflated {
                            text: before.opcode == OpCode::Data(Data::Text),
                        });
                        prop_assert!(!after.rsv1);
                        prop_assert_eq!(after.opcode, OpCode::Data(Data::Binary));
                    }
                    (true, false) => {
                        expected_kinds.push(Kind::Plain);
                        prop_assert_eq!((after.rsv1, after.opcode), (false, before.opcode));
                    }
                    // Continuation and control frames: untouched, RSV1 included.
                    (false, _) => prop_assert_eq!((after.rsv1, after.opcode), (before.rsv1, before.opcode)),
                }
            }
            let noted: Vec<Kind> = std::iter::from_fn(|| kinds.next()).collect();
            prop_assert_eq!(noted, expected_kinds);
        }
    }

    #[tokio::test]
    async fn reads_through_the_socket_are_watched_and_a_plain_socket_is_left_alone() {
        // A compressed text frame, masked, then a plain binary one.
        let bytes = [
            0xc1, 0x83, 1, 2, 3, 4, 0xaa, 0xbb, 0xcc, 0x82, 0x81, 0, 0, 0, 0, 0x55,
        ];
        let (mut reader, kinds) = Rsv1Reader::deflate(&bytes[..]);
        let mut read = Vec::new();
        reader.read_to_end(&mut read).await.expect("read");
        assert_eq!(read[0], 0x82, "RSV1 cleared, opcode binary");
        assert_eq!(read[1..], bytes[1..]);
        assert_eq!(kinds.next(), Some(Kind::Deflated { text: true }));
        assert_eq!(kinds.next(), Some(Kind::Plain));
        assert_eq!(kinds.next(), None);

        let mut plain = Rsv1Reader::plain(&bytes[..]);
        let mut read = Vec::new();
        plain.read_to_end(&mut read).await.expect("read");
        assert_eq!(
            read, bytes,
            "no compression agreed: RSV1 reaches tungstenite"
        );
    }

    #[test]
    fn a_reader_that_falls_behind_is_stopped() {
        let (mut reader, _kinds) = Rsv1Reader::deflate(());
        let watch = reader.watch.as_mut().expect("watching");
        let mut frames = [0x81u8, 0x80, 0, 0, 0, 0].repeat(MAX_UNTAKEN);
        assert!(watch.watch(&mut frames).is_ok());
        assert!(watch.watch(&mut [0x82, 0x80, 0, 0, 0, 0]).is_err());
    }
}
