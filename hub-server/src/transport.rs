//! What carries a session's frames: a WebSocket (`/ws`, [`crate::upgrade`]) or the SSE fallback
//! (`/sse`, [`crate::sse`]). The session's rules are the same over both (see [`crate::session`]);
//! only the keep-alive interval and the metrics' `transport` label differ.

use std::time::Duration;

/// SSE's keep-alive comment goes out at least this often: proxies close a response idle for
/// longer than about 30 s, and DESIGN 18 promises 15 s.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ws,
    Sse,
}

impl Transport {
    /// The index of its value in `metrics::labels::TRANSPORTS`.
    pub fn index(self) -> usize {
        match self {
            Transport::Ws => 0,
            Transport::Sse => 1,
        }
    }

    /// How often the writer sends its keep-alive (a WebSocket ping, an SSE comment line).
    pub fn keepalive(self, ping_interval: Duration) -> Duration {
        match self {
            Transport::Ws => ping_interval,
            Transport::Sse => ping_interval.min(SSE_KEEPALIVE),
        }
    }
}
