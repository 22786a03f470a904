//! A benchmark connection's bytes between the socket and tungstenite: counted as they arrive (the
//! wire bytes behind each delivery), and, when the tool offered permessage-deflate (`--deflate`)
//! and the server agreed, inflated: tungstenite implements no extension and fails any frame with
//! RSV1 set, so each compressed message is rewritten here into the plain text frame it stands for
//! before tungstenite reads it. The tool itself never compresses what it sends (RFC 7692 lets a
//! sender leave any message uncompressed).
//!
//! A hub without context takeover compresses a frame once for all its receivers, so a thousand
//! subscribers get byte-identical payloads: the connections of one tool share an [`InflateCache`]
//! and inflate each distinct payload once (every copy's bytes are still compared whole). Real
//! clients each inflate on their own CPU; the tool's one core stays on measuring the hub.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_EXTENSIONS;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What a browser (Chrome) offers.
const OFFER: &str = "permessage-deflate; client_max_window_bits";
/// RFC 7692 7.2.2: the receiver appends what the sender's sync flush ended with.
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
/// A message never inflates past this (tungstenite's own default message limit).
const MAX_MESSAGE: usize = 64 << 20;

/// Distinct compressed payloads an [`InflateCache`] remembers (the newest; a fan-out's copies
/// arrive within moments of each other).
const CACHE_ENTRIES: usize = 256;

/// What compressed messages inflated to, by their exact bytes, shared by a tool's connections.
/// Used only where the server agreed to `server_no_context_takeover`: with a kept context, equal
/// bytes need not inflate alike.
#[derive(Debug, Default)]
pub struct InflateCache(Mutex<CacheEntries>);

#[derive(Debug, Default)]
struct CacheEntries {
    inflated: HashMap<Box<[u8]>, Arc<[u8]>>,
    /// Keys, oldest first, for eviction.
    order: VecDeque<Box<[u8]>>,
}

impl InflateCache {
    fn get(&self, compressed: &[u8]) -> Option<Arc<[u8]>> {
        let entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        entries.inflated.get(compressed).cloned()
    }

    fn put(&self, compressed: &[u8], inflated: Arc<[u8]>) {
        let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if entries.inflated.contains_key(compressed) {
            return;
        }
        if entries.order.len() >= CACHE_ENTRIES
            && let Some(oldest) = entries.order.pop_front()
        {
            entries.inflated.remove(&oldest);
        }
        entries.order.push_back(compressed.into());
        entries.inflated.insert(compressed.into(), inflated);
    }
}

/// Opens a WebSocket to `url` over a [`Wire`], offering permessage-deflate when `deflate` is given
/// (the cache the tool's connections share).
pub async fn connect(
    url: &str,
    config: WebSocketConfig,
    deflate: Option<Arc<InflateCache>>,
) -> Result<(WebSocketStream<Wire>, Response), tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if deflate.is_some() {
        request
            .headers_mut()
            .insert(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_static(OFFER));
    }
    let uri = request.uri();
    let host = uri.host().unwrap_or("127.0.0.1");
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    // Nagle off: publishers write small frames and latency is what is measured.
    tcp.set_nodelay(true)?;
    tokio_tungstenite::client_async_with_config(request, Wire::new(tcp, deflate), Some(config))
        .await
}

/// The socket as tungstenite reads it.
#[derive(Debug)]
pub struct Wire {
    tcp: TcpStream,
    bytes_read: u64,
    stage: Stage,
    /// Read from the socket, not yet passed on (deflate only: a frame is rewritten whole).
    input: Vec<u8>,
    /// Ready for tungstenite, from `out_at` on.
    output: Vec<u8>,
    out_at: usize,
}

#[derive(Debug)]
enum Stage {
    /// The HTTP response to the upgrade, up to its blank line; `offered`: we asked for deflate.
    Head { offered: Option<Arc<InflateCache>> },
    /// Frames, passed on as they come.
    Plain,
    /// Frames of a connection that agreed to permessage-deflate.
    Deflate(Box<Inflating>),
}

#[derive(Debug)]
struct Inflating {
    /// Created at the first compressed message: most idle connections never get one.
    z: Option<Decompress>,
    /// `server_no_context_takeover` was agreed: every message starts afresh, and equal payloads
    /// inflate alike (the cache is used only then).
    reset: bool,
    cache: Arc<InflateCache>,
    /// The opcode and payload so far of a compressed message that came in fragments.
    partial: Option<(u8, Vec<u8>)>,
}

impl Wire {
    fn new(tcp: TcpStream, offered: Option<Arc<InflateCache>>) -> Self {
        Wire {
            tcp,
            bytes_read: 0,
            stage: Stage::Head { offered },
            input: Vec::new(),
            output: Vec::new(),
            out_at: 0,
        }
    }

    /// Bytes read from the socket so far (handshake, frame headers and payloads).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Whether the server agreed to permessage-deflate (known once the handshake is done).
    pub fn deflate(&self) -> bool {
        matches!(self.stage, Stage::Deflate(_))
    }

    /// Moves what can be passed on from `input` to `output`.
    fn process(&mut self) -> io::Result<()> {
        loop {
            match &mut self.stage {
                Stage::Head { offered } => {
                    let Some(end) = self.input.windows(4).position(|w| w == b"\r\n\r\n") else {
                        return Ok(());
                    };
                    let head = String::from_utf8_lossy(&self.input[..end]).to_ascii_lowercase();
                    self.stage = match (agreed(&head), offered.take()) {
                        (Some(reset), Some(cache)) => Stage::Deflate(Box::new(Inflating {
                            z: None,
                            reset,
                            cache,
                            partial: None,
                        })),
                        _ => Stage::Plain,
                    };
                    self.output.extend(self.input.drain(..end + 4));
                }
                Stage::Plain => {
                    self.output.append(&mut self.input);
                    return Ok(());
                }
                Stage::Deflate(inflating) => {
                    // Every whole frame read so far, then one drain: a drain per frame would move
                    // the rest of the chunk each time.
                    let mut used = 0;
                    while let Some(n) = inflating.frame(&self.input[used..], &mut self.output)? {
                        used += n;
                    }
                    self.input.drain(..used);
                    return Ok(());
                }
            }
        }
    }
}

/// In a lower-cased 101 response: whether it agreed to permessage-deflate, and if so whether
/// without server context takeover.
fn agreed(head: &str) -> Option<bool> {
    let value = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == "sec-websocket-extensions").then_some(value)
    })?;
    value
        .trim()
        .starts_with("permessage-deflate")
        .then(|| value.contains("server_no_context_takeover"))
}

impl Inflating {
    /// Passes on the first whole frame of `input` (inflated when it ends a compressed message);
    /// how many bytes it took, or `None` until it has all arrived.
    fn frame(&mut self, input: &[u8], output: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let [b0, b1, ..] = *input else {
            return Ok(None);
        };
        let (extended, mask) = (
            match b1 & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            },
            if b1 & 0x80 != 0 { 4 } else { 0 },
        );
        let header = 2 + extended + mask;
        if input.len() < header {
            return Ok(None);
        }
        let len = match extended {
            0 => u64::from(b1 & 0x7f),
            n => input[2..2 + n]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        };
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(header))
            .ok_or_else(|| io::Error::other("frame too long"))?;
        if input.len() < end {
            return Ok(None);
        }
        let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
        let payload = &input[header..end];
        // Servers do not mask: a masked frame goes to tungstenite as it is, which refuses it.
        let compressed_start = rsv1 && mask == 0 && (opcode == 1 || opcode == 2);
        match (compressed_start, opcode, self.partial.take()) {
            (true, _, _) if fin => self.emit(opcode, payload, output)?,
            (true, _, _) => self.partial = Some((opcode, payload.to_vec())),
            (false, 0, Some((first, mut sofar))) => {
                sofar.extend_from_slice(payload);
                match fin {
                    true => self.emit(first, &sofar, output)?,
                    false => self.partial = Some((first, sofar)),
                }
            }
            (false, _, partial) => {
                // Control frames may come between fragments; everything else passes as it is.
                self.partial = partial;
                output.extend_from_slice(&input[..end]);
            }
        }
        Ok(Some(end))
    }

    /// A whole compressed message, written out as one plain final frame.
    fn emit(&mut self, opcode: u8, payload: &[u8], output: &mut Vec<u8>) -> io::Result<()> {
        if self.reset
            && let Some(message) = self.cache.get(payload)
        {
            plain_frame(opcode, &message, output);
            return Ok(());
        }
        let z = self.z.get_or_insert_with(|| Decompress::new(false));
        let mut message = Vec::with_capacity(payload.len() * 4 + 64);
        inflate(z, payload, &mut message)?;
        inflate(z, &TAIL, &mut message)?;
        plain_frame(opcode, &message, output);
        if self.reset {
            z.reset(false);
            self.cache.put(payload, message.into());
        }
        Ok(())
    }
}

/// `message` as one unmasked final frame, as a server writes it.
pub(crate) fn plain_frame(opcode: u8, message: &[u8], output: &mut Vec<u8>) {
    output.push(0x80 | opcode);
    match message.len() {
        n @ 0..=125 => output.push(n as u8),
        n @ 126..=0xffff => {
            output.push(126);
            output.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            output.push(127);
            output.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    output.extend_from_slice(message);
}

/// Feeds all of `input` to the inflater, growing `out` as needed (up to [`MAX_MESSAGE`]).
fn inflate(z: &mut Decompress, mut input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let corrupt = || io::Error::new(io::ErrorKind::InvalidData, "bad deflate data from server");
    loop {
        if out.len() == out.capacity() {
            if out.len() >= MAX_MESSAGE {
                return Err(io::Error::other("server message inflates too far"));
            }
            out.reserve(out.len().max(1024));
        }
        let read = z.total_in();
        let status = z
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|_| corrupt())?;
        let consumed = usize::try_from(z.total_in() - read).map_err(|_| corrupt())?;
        input = &input[consumed..];
        let spare = out.len() < out.capacity();
        if status == Status::StreamEnd || (input.is_empty() && spare) {
            return Ok(());
        }
        if consumed == 0 && spare {
            return Err(corrupt());
        }
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_at < this.output.len() {
                let n = buf.remaining().min(this.output.len() - this.out_at);
                buf.put_slice(&this.output[this.out_at..this.out_at + n]);
                this.out_at += n;
                if this.out_at == this.output.len() {
                    this.output.clear();
                    this.out_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if matches!(this.stage, Stage::Plain) && this.input.is_empty() {
                // The common case, as without this wrapper: straight into tungstenite's buffer.
                let before = buf.filled().len();
                let read = Pin::new(&mut this.tcp).poll_read(cx, buf);
                this.bytes_read += (buf.filled().len() - before) as u64;
                return read;
            }
            let mut chunk = [0u8; 8 * 1024];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.tcp).poll_read(cx, &mut chunk_buf) {
                Poll::Ready(Ok(())) if chunk_buf.filled().is_empty() => {
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(())) => {
                    this.bytes_read += chunk_buf.filled().len() as u64;
                    this.input.extend_from_slice(chunk_buf.filled());
                    this.process()?;
                }
                other => return other,
            }
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use flate2::{Compress, Compression, FlushCompress};
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    fn compress(message: &[u8]) -> Vec<u8> {
        let mut z = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(message.len() + 64);
        z.compress_vec(message, &mut out, FlushCompress::Sync)
            .expect("deflate");
        out.truncate(out.len() - TAIL.len());
        out
    }

    fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![b0];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// A server on a bare socket that agrees to deflate and sends compressed and plain messages,
    /// whole and in fragments; the tool's client reads them as plain text.
    #[tokio::test]
    async fn compressed_messages_reach_tungstenite_as_plain_text() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let long = "dashboard ".repeat(100);
        let server_long = long.clone();
        let server = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                request.push(tcp.read_u8().await.unwrap());
            }
            let request = String::from_utf8(request).unwrap();
            assert!(request.contains(OFFER), "{request}");
            let key = request
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap();
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let mut out = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate; \
                 server_no_context_takeover; client_no_context_takeover\r\n\r\n"
            )
            .into_bytes();
            out.extend(frame(0xc1, &compress(server_long.as_bytes())));
            out.extend(frame(0x81, b"plain"));
            let z = compress(b"in two parts");
            out.extend(frame(0x41, &z[..3]));
            out.extend(frame(0x89, b"ping"));
            out.extend(frame(0x80, &z[3..]));
            // One byte at a time: frames cut anywhere.
            for b in out {
                tcp.write_all(&[b]).await.unwrap();
            }
            tcp
        });
        let cache = Arc::new(InflateCache::default());
        let (mut ws, _) = connect(&url, WebSocketConfig::default(), Some(cache.clone()))
            .await
            .expect("handshake");
        assert!(ws.get_ref().deflate());
        let mut texts = Vec::new();
        while texts.len() < 3 {
            match ws.next().await.expect("open").expect("valid") {
                Message::Text(t) => texts.push(t.as_str().to_owned()),
                Message::Ping(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(texts, [long.as_str(), "plain", "in two parts"]);
        assert!(
            ws.get_ref().bytes_read() < long.len() as u64,
            "counted compressed"
        );
        ws.send(Message::text("still writable")).await.unwrap();
        drop(server.await.unwrap());
    }

    /// Without context takeover a payload seen before is not inflated again (a planted entry
    /// shows the cache is what answered); with a kept context the cache is never asked.
    #[test]
    fn equal_payloads_inflate_once_only_without_context_takeover() {
        let (planted, fresh) = (compress(b"planted"), compress(b"the same for everyone"));
        for reset in [true, false] {
            let cache = Arc::new(InflateCache::default());
            cache.put(&planted, Arc::from(&b"from the cache"[..]));
            let mut inflating = Inflating {
                z: None,
                reset,
                cache: cache.clone(),
                partial: None,
            };
            let mut out = Vec::new();
            inflating.emit(1, &planted, &mut out).expect("inflate");
            let expected: &[u8] = if reset { b"from the cache" } else { b"planted" };
            assert_eq!(&out[2..], expected, "reset {reset}");
            out.clear();
            inflating.emit(1, &fresh, &mut out).expect("inflate");
            assert_eq!(&out[2..], b"the same for everyone");
            assert_eq!(
                cache.get(&fresh).as_deref(),
                reset.then_some(&b"the same for everyone"[..]),
                "kept for the next copy only without context takeover"
            );
        }
        let cache = InflateCache::default();
        for i in 0..CACHE_ENTRIES + 1 {
            cache.put(&i.to_be_bytes(), Arc::from(&b"x"[..]));
        }
        assert!(
            cache.get(&0usize.to_be_bytes()).is_none(),
            "the oldest is evicted"
        );
        assert!(cache.get(&CACHE_ENTRIES.to_be_bytes()).is_some());
    }
}
