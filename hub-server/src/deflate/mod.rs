//! permessage-deflate (RFC 7692), always without context takeover in both directions, so that no
//! compression state lives per connection: [`negotiate`] answers the handshake, [`compress`] and
//! [`inflate`] hold the hub's pooled compressors and inflaters, [`rsv1`] lets compressed client
//! frames past tungstenite and [`inbound`] inflates them for the session. The writer sends
//! compressed frames through tungstenite's raw `Message::Frame` ([`compressed_message`]).
//!
//! tungstenite implements no extension and has no hook for one: this module works from outside it,
//! without a fork. A frame sent to many clients is compressed once for all of them (see
//! `protocol::Frame::deflated`).

mod compress;
mod inbound;
mod inflate;
mod negotiate;
mod pool;
mod rsv1;

use std::sync::Arc;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame as WsFrame, FrameHeader};

pub use compress::{Deflaters, MAX_WINDOW_BITS};
pub use inbound::{Corrupt, Inbound, Inflating};
pub use inflate::{InflateError, Inflaters};
pub use negotiate::{Agreed, negotiate};
pub use rsv1::{Kinds, Rsv1Reader};

/// The compressors and inflaters every connection of a hub shares.
#[derive(Debug)]
pub struct Pools {
    pub deflaters: Deflaters,
    pub inflaters: Arc<Inflaters>,
}

impl Pools {
    /// Keeps `cap` idle (de)compressors of each kind: compression runs on the runtime's worker
    /// threads, one message at a time each, so about as many as there are threads are ever busy.
    pub fn new(cap: usize) -> Self {
        Pools {
            deflaters: Deflaters::new(cap),
            inflaters: Arc::new(Inflaters::new(cap)),
        }
    }
}

/// One connection's compression, once agreed: what its writer and its reader need.
#[derive(Debug)]
pub struct Connection {
    pub pools: Arc<Pools>,
    pub window_bits: u8,
    /// Frames shorter than this go uncompressed (`compression_min_bytes`).
    pub min_bytes: usize,
    pub kinds: Arc<Kinds>,
}

impl Connection {
    /// The writer's part and the reader's part; `max` is `max_message_bytes`.
    pub fn split(self, max: usize) -> (Outbound, Inflating) {
        let inflating = Inflating {
            kinds: self.kinds,
            inflaters: self.pools.inflaters.clone(),
            max,
        };
        let outbound = Outbound {
            pools: self.pools,
            window_bits: self.window_bits,
            min_bytes: self.min_bytes,
        };
        (outbound, inflating)
    }
}

/// The writer's side of a connection's compression.
#[derive(Debug)]
pub struct Outbound {
    pools: Arc<Pools>,
    window_bits: u8,
    min_bytes: usize,
}

impl Outbound {
    /// Whether a message of `len` bytes goes compressed.
    pub fn wants(&self, len: usize) -> bool {
        len >= self.min_bytes
    }

    /// The compressors, when this connection reads what they make for every connection (the
    /// largest window, which is what clients ask for unless they name a smaller one).
    pub fn shared(&self) -> Option<&Deflaters> {
        (self.window_bits == MAX_WINDOW_BITS).then_some(&self.pools.deflaters)
    }

    /// `message` compressed for this connection alone (its window, a pooled compressor).
    pub fn compress(&self, message: &[u8]) -> Option<Bytes> {
        self.pools.deflaters.compress(self.window_bits, message)
    }
}

/// A whole message whose `payload` is compressed: one final frame with RSV1 set (RFC 7692 6.1).
/// tungstenite writes a raw frame as it is, copying the shared bytes into the socket's write
/// buffer as it does a text message's.
pub fn compressed_message(payload: Bytes, text: bool) -> Message {
    let header = FrameHeader {
        is_final: true,
        rsv1: true,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::Data(if text { Data::Text } else { Data::Binary }),
        mask: None,
    };
    Message::Frame(WsFrame::from_payload(header, payload))
}
