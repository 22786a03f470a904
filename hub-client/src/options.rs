//! The client's options and their defaults: the JavaScript SDK's, with durations as
//! [`Duration`]s, plus the Rust SDK's bounds on what a subscription buffers for the application.

use std::time::Duration;

use crate::error::HubError;
use crate::token::Token;

/// How a [`HubClient`](crate::HubClient) behaves. Start from [`ClientOptions::default`] and set
/// what you need:
///
/// ```
/// use std::time::Duration;
/// use hub_client::ClientOptions;
///
/// let options = ClientOptions {
///     publish_timeout: Duration::from_secs(5),
///     ..ClientOptions::default()
/// }
/// .with_token("eyJhbGciOi…");
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// A JWT for hubs in `auth_mode = jwt`: fixed, or a provider asked again before expiry and
    /// after a 4001/4002 close. `None`: anonymous (`auth_mode = off`).
    pub token: Option<Token>,
    /// Backoff: attempt n waits a random time in [0, min(max, min·2^n)). Default 500 ms.
    pub reconnect_delay_min: Duration,
    /// Default 20 s.
    pub reconnect_delay_max: Duration,
    /// An attempt with no `welcome` by then is dropped (the token provider's call included).
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Nothing heard for this long: the client pings the hub. Zero: never. Default 20 s.
    pub ping_interval: Duration,
    /// No frame within this after a ping: the connection is dead. Default 10 s.
    pub pong_timeout: Duration,
    /// A publish (or presence question) not answered by then fails with code `timeout`.
    /// Default 15 s.
    pub publish_timeout: Duration,
    /// Publishes waiting at most; more fail at once with `timeout`. Default 1000.
    pub max_queued: usize,
    /// Publishes awaiting their ack at once. Default 32.
    pub publish_window: usize,
    /// A publish in doubt (its connection dropped before the ack) is sent again only after a
    /// history read this long after it was sent showed it was not stored. Default 5 s.
    pub resend_after: Duration,
    /// The hub's `max_message_bytes`: larger publishes fail with `too_large`. Default 65536.
    pub max_message_bytes: usize,
    /// Frames per second sent at most (the hub's rate limit is 100/s); `f64::INFINITY`: unpaced.
    /// Default 80.
    pub send_rate: f64,
    /// Default 100.
    pub send_burst: u32,
    /// Messages held behind a hole per room before giving up on it. Default 5000.
    pub max_held: usize,
    /// Message ids remembered per room to drop copies. Default 2000.
    pub dedupe_window: usize,
    /// How long a hole right behind a publish awaiting its ack may wait for it. Default 1 s.
    pub gap_wait: Duration,
    /// Messages a [`Subscription`](crate::Subscription) holds that the application has not taken
    /// yet. When it is full the client stops taking the room's messages and, once the application
    /// has taken half of them, fetches what it skipped from the room's history (a `since`
    /// re-join): nothing is lost while the history holds it, and the client never waits for the
    /// application. Default 1000.
    pub room_buffer: usize,
    /// The same bound in bytes of message frames. Default 8 MiB.
    pub room_buffer_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            token: None,
            reconnect_delay_min: Duration::from_millis(500),
            reconnect_delay_max: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(15),
            max_queued: 1000,
            publish_window: 32,
            resend_after: Duration::from_secs(5),
            max_message_bytes: 65536,
            send_rate: 80.0,
            send_burst: 100,
            max_held: 5000,
            dedupe_window: 2000,
            gap_wait: Duration::from_secs(1),
            room_buffer: 1000,
            room_buffer_bytes: 8 << 20,
        }
    }
}

impl ClientOptions {
    /// The same options with `token`.
    pub fn with_token(mut self, token: impl Into<Token>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Refuses options the client cannot work with, naming the option.
    pub(crate) fn validate(&self) -> Result<(), HubError> {
        let bad = |what: &str| Err(HubError::bad_argument(what.to_owned()));
        if self.reconnect_delay_min.is_zero() || self.reconnect_delay_max < self.reconnect_delay_min
        {
            return bad("reconnect delays need 0 < reconnect_delay_min <= reconnect_delay_max");
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout must be more than zero");
        }
        if !self.ping_interval.is_zero() && self.pong_timeout.is_zero() {
            return bad("pong_timeout must be more than zero when ping_interval is");
        }
        if self.publish_timeout.is_zero() {
            return bad("publish_timeout must be more than zero");
        }
        if self.max_queued == 0 || self.publish_window == 0 {
            return bad("max_queued and publish_window must be at least 1");
        }
        if self.send_rate.is_nan() || self.send_rate <= 0.0 || self.send_burst == 0 {
            return bad("send_rate must be more than zero and send_burst at least 1");
        }
        if self.max_held == 0 || self.dedupe_window == 0 {
            return bad("max_held and dedupe_window must be at least 1");
        }
        if self.room_buffer < 2 || self.room_buffer_bytes < 1024 {
            return bad("room_buffer must be at least 2 and room_buffer_bytes at least 1024");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(ClientOptions::default().validate().is_ok());
        let err = ClientOptions {
            reconnect_delay_max: Duration::from_millis(1),
            ..ClientOptions::default()
        }
        .validate()
        .expect_err("max < min");
        assert!(err.message().contains("reconnect_delay"), "{err}");
        let err = ClientOptions {
            send_rate: 0.0,
            ..ClientOptions::default()
        }
        .validate()
        .expect_err("rate 0");
        assert!(err.message().contains("send_rate"), "{err}");
    }
}
