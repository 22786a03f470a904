//! Inflating one client message (RFC 7692 7.2.2: its payload, then the `00 00 ff ff` the sender
//! removed), never to more than the hub's message limit: a few KiB that would inflate to
//! gigabytes (a "deflate bomb") cost at most the limit, then are refused.

use flate2::{Decompress, FlushDecompress, Status};

use super::compress::{MAX_WINDOW_BITS, TAIL};
use super::pool::Pool;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The message inflates past the limit (close 1009).
    #[error("compressed message inflates past the message limit")]
    TooBig,
    /// Not a valid deflate stream, or one that refers to an earlier message although no context
    /// takeover was agreed (close 1007).
    #[error("compressed message is not valid deflate data")]
    Corrupt,
}

/// Output grows by doubling from here (a chat message needs no more).
const FIRST_OUTPUT: usize = 1024;

/// Inflaters shared by every connection of a hub. Each has a 32 KiB window: it reads what a
/// client compressed with any window size.
#[derive(Debug)]
pub struct Inflaters {
    pool: Pool<Decompress>,
}

impl Inflaters {
    pub fn new(cap: usize) -> Self {
        Inflaters {
            pool: Pool::new(cap),
        }
    }

    /// The message `payload` inflates to, if that is at most `max` bytes.
    pub fn inflate(&self, payload: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
        let mut z = self
            .pool
            .take()
            .unwrap_or_else(|| Decompress::new_with_window_bits(false, MAX_WINDOW_BITS));
        let mut out = Vec::new();
        let result = match feed(&mut z, payload, &mut out, max) {
            // A block with BFINAL set ended the stream: the tail is not needed (RFC 7692 7.2.3.4).
            Ok(Status::StreamEnd) => Ok(()),
            Ok(_) => feed(&mut z, &TAIL, &mut out, max).map(drop),
            Err(err) => Err(err),
        };
        z.reset(false);
        self.pool.give_back(z);
        result.map(|()| out)
    }
}

/// Feeds all of `input` (or up to the end of the stream), growing `out` as needed but never past
/// `max` + 1 bytes: one byte over is how "too big" is seen.
fn feed(
    z: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<Status, InflateError> {
    loop {
        if out.len() == out.capacity() {
            let room = out.len().max(FIRST_OUTPUT).min(max + 1 - out.len());
            if room == 0 {
                return Err(InflateError::TooBig);
            }
            out.reserve_exact(room);
        }
        let (read, written) = (z.total_in(), out.len());
        let status = z
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Corrupt)?;
        if out.len() > max {
            return Err(InflateError::TooBig);
        }
        let consumed = usize::try_from(z.total_in() - read).map_err(|_| InflateError::Corrupt)?;
        input = input.get(consumed..).ok_or(InflateError::Corrupt)?;
        let spare = out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(status),
            // Everything read and room left over: all the output there is, is out.
            _ if input.is_empty() && spare => return Ok(status),
            // Input left, room left, and no progress: the stream is cut or broken.
            _ if spare && consumed == 0 && out.len() == written => {
                return Err(InflateError::Corrupt);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::Deflaters;

    #[test]
    fn the_examples_of_rfc_7692_inflate_to_hello() {
        let inflaters = Inflaters::new(1);
        for (section, payload) in [
            ("7.2.3.1", &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..]),
            (
                "7.2.3.3",
                &[
                    0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                ],
            ),
            ("7.2.3.4", &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            (
                "7.2.3.4 + 0",
                &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            ),
            (
                "7.2.3.5",
                &[
                    0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
                ],
            ),
        ] {
            assert_eq!(
                inflaters.inflate(payload, 1024).as_deref(),
                Ok(&b"Hello"[..]),
                "{section}"
            );
        }
        assert_eq!(inflaters.inflate(&[0x00], 1024), Ok(Vec::new()), "7.2.3.6");
    }

    #[test]
    fn a_bomb_is_refused_at_the_limit_and_garbage_is_corrupt() {
        let deflaters = Deflaters::new(1);
        let inflaters = Inflaters::new(1);
        let bomb = deflaters
            .compress(15, &vec![0u8; 10 << 20])
            .expect("compressed");
        assert!(
            bomb.len() < 12_000,
            "10 MiB of zeros in {} bytes",
            bomb.len()
        );
        assert_eq!(
            inflaters.inflate(&bomb, 64 << 10),
            Err(InflateError::TooBig)
        );
        assert_eq!(
            inflaters.inflate(&bomb, 10 << 20).map(|m| m.len()),
            Ok(10 << 20)
        );
        // Exactly at the limit is fine; one byte over is not.
        let exact = deflaters.compress(15, &[7u8; 5000]).expect("compressed");
        assert_eq!(inflaters.inflate(&exact, 5000).map(|m| m.len()), Ok(5000));
        assert_eq!(inflaters.inflate(&exact, 4999), Err(InflateError::TooBig));
        assert_eq!(
            inflaters.inflate(&[0xff, 0xff, 0xff], 1024),
            Err(InflateError::Corrupt)
        );
        // RFC 7692 7.2.3.2's second "Hello", which refers back to the first one: a client that
        // kept its context although told not to.
        assert_eq!(
            inflaters.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], 1024),
            Err(InflateError::Corrupt)
        );
        // The pooled inflater was reset after each error.
        let ok = deflaters.compress(15, b"after").expect("compressed");
        assert_eq!(inflaters.inflate(&ok, 1024).as_deref(), Ok(&b"after"[..]));
    }
}
