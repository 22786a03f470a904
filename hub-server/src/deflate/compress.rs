//! Compressing one message for a frame with RSV1 set (RFC 7692 7.2.1): raw deflate, a sync flush,
//! its final `00 00 ff ff` removed, and the compressor reset (no context takeover).

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

use super::pool::Pool;

/// The largest LZ77 window (32 KiB): what a client that names no `server_max_window_bits` reads.
pub const MAX_WINDOW_BITS: u8 = 15;
/// zlib cannot deflate with a 256-byte window (it silently uses 512): offers of 8 are declined.
pub const MIN_WINDOW_BITS: u8 = 9;
/// zlib's default level. Level 1 leaves a 2 KiB dashboard frame at 2.9× fewer bytes, level 6 at
/// 3.8×; a frame is compressed once for all its recipients, so the slower level is affordable.
const LEVEL: u32 = 6;
/// What a sync flush ends with; RFC 7692 7.2.1 has the sender remove it.
pub(super) const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
/// A compressor's scratch buffer is kept for its next message up to this size; one that grew
/// past it (a rare large frame) is freed, so the pool never holds large buffers for long.
const KEEP_SCRATCH: usize = 64 * 1024;

#[derive(Debug)]
struct Deflater {
    z: Compress,
    scratch: Vec<u8>,
}

/// Compressors by window size, shared by every connection of a hub.
#[derive(Debug)]
pub struct Deflaters {
    by_window: [Pool<Deflater>; (MAX_WINDOW_BITS - MIN_WINDOW_BITS + 1) as usize],
}

impl Deflaters {
    /// `cap` idle compressors are kept per window size (each holds ~300 KiB of deflate state).
    pub fn new(cap: usize) -> Self {
        Deflaters {
            by_window: std::array::from_fn(|_| Pool::new(cap)),
        }
    }

    /// `message` compressed with an LZ77 window of `window_bits` (9–15), as a frame's payload;
    /// `None` only if the compressor reports an error, which valid state never does (the caller
    /// then sends the message uncompressed).
    pub fn compress(&self, window_bits: u8, message: &[u8]) -> Option<Bytes> {
        let bits = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        let pool = &self.by_window[usize::from(bits - MIN_WINDOW_BITS)];
        let mut deflater = pool.take().unwrap_or_else(|| Deflater {
            z: Compress::new_with_window_bits(Compression::new(LEVEL), false, bits),
            scratch: Vec::new(),
        });
        let out = deflater.compress(message);
        deflater.z.reset();
        if deflater.scratch.capacity() > KEEP_SCRATCH {
            deflater.scratch = Vec::new();
        }
        pool.give_back(deflater);
        out
    }
}

impl Deflater {
    fn compress(&mut self, message: &[u8]) -> Option<Bytes> {
        let out = &mut self.scratch;
        out.clear();
        out.reserve(message.len() / 2 + 64);
        let mut rest = message;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let (read, written) = (self.z.total_in(), out.len());
            self.z.compress_vec(rest, out, FlushCompress::Sync).ok()?;
            let consumed = usize::try_from(self.z.total_in() - read).ok()?;
            rest = rest.get(consumed..)?;
            // zlib's rule: the flush is complete once a call leaves output space unused.
            if rest.is_empty() && out.len() < out.capacity() {
                break;
            }
            if consumed == 0 && out.len() == written && out.len() < out.capacity() {
                return None;
            }
        }
        let body = out.strip_suffix(&TAIL)?;
        // Copied out at its size: the frame keeps these bytes while it is queued or stored, and
        // the scratch buffer's capacity stays with the pool.
        Some(Bytes::copy_from_slice(body))
    }
}

#[cfg(test)]
mod tests {
    use flate2::{Decompress, FlushDecompress};

    use super::*;

    /// A reference inflater (flate2 used directly), not the one under test in `inflate`.
    fn inflate(payload: &[u8], window_bits: u8) -> Vec<u8> {
        let mut d = Decompress::new_with_window_bits(false, window_bits);
        let mut input = payload.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .expect("valid deflate");
        assert_eq!(d.total_in(), input.len() as u64, "all input read");
        out
    }

    #[test]
    fn messages_round_trip_with_every_window() {
        let deflaters = Deflaters::new(2);
        let json =
            r#"{"type":"message","room":"general","content":"hello hello hello"}"#.repeat(40);
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for bits in MIN_WINDOW_BITS..=MAX_WINDOW_BITS {
            for message in [&b""[..], b"x", json.as_bytes(), &noise] {
                let payload = deflaters.compress(bits, message).expect("compressed");
                // Read with the client's window no larger than what we compressed with.
                assert_eq!(inflate(&payload, bits), message, "window {bits}");
            }
        }
        let json_out = deflaters.compress(15, json.as_bytes()).expect("compressed");
        assert!(json_out.len() * 10 < json.len(), "{}", json_out.len());
    }

    #[test]
    fn an_empty_message_is_one_zero_byte_and_compressors_are_reused() {
        let deflaters = Deflaters::new(1);
        // RFC 7692 7.2.3.6: an empty stored block without its tail.
        assert_eq!(deflaters.compress(15, b"").as_deref(), Some(&[0u8][..]));
        assert_eq!(deflaters.by_window[6].idle(), 1);
        // No context carried over from one message to the next: the same bytes each time.
        let a = deflaters.compress(15, b"abcabcabc abcabcabc");
        let b = deflaters.compress(15, b"abcabcabc abcabcabc");
        assert_eq!(a, b);
        assert_eq!(deflaters.by_window[6].idle(), 1, "one compressor, reused");
    }
}
