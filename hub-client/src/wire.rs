//! The connection as sending publishes needs it: its number, its client id, a send, and its pace.
//! A seam of its own so the outbox, above it, and the connection, below it, both depend on it and
//! not on each other (and the outbox's tests can stand in a fake wire).

use std::time::Duration;

use tokio::time::Instant;

/// The connection, as the outbox needs it.
pub(crate) trait Wire {
    fn generation(&self) -> u64;
    fn client_id(&self) -> &str;
    /// Sends a frame; false when it could not (nothing was sent).
    fn send(&mut self, text: String) -> bool;
    /// A pace token for a frame that may wait; false when there is none now.
    fn pace(&mut self, now: Instant) -> bool;
    fn pace_wait(&mut self, now: Instant) -> Duration;
}
