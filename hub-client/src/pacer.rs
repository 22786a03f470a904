//! The pace of frames sent to the hub. The hub refuses frames past its per-connection rate limit
//! (100/s, bursts of 200 by default) with an error that names no frame, and closes a client that
//! keeps going (1008); a reconnect that sent a full publish queue at once would trip it. A token
//! bucket a little under the hub's default keeps the SDK inside it.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct Pacer {
    /// Frames per second; infinite turns pacing off.
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Pacer {
    pub(crate) fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Pacer {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if self.rate.is_infinite() {
            self.tokens = self.burst;
        } else {
            let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        self.at = now;
    }

    /// Takes a token for a frame that may wait (a publish): false when there is none now.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Counts a frame that cannot wait (auth, join, ping): it may leave the bucket in debt.
    pub(crate) fn force(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }

    /// How long until [`Pacer::try_take`] can succeed.
    pub(crate) fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / self.rate).max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(80.0, 100, t0);
        assert_eq!((0..150).filter(|_| p.try_take(t0)).count(), 100);
        assert_eq!(p.wait(t0), Duration::from_micros(12_500));
        let later = t0 + Duration::from_millis(500);
        assert_eq!((0..150).filter(|_| p.try_take(later)).count(), 40);
    }

    #[test]
    fn forced_frames_go_into_debt() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10.0, 1, t0);
        p.force(t0);
        p.force(t0);
        assert!(!p.try_take(t0));
        assert_eq!(p.wait(t0), Duration::from_millis(200));
    }

    #[test]
    fn an_infinite_rate_never_waits() {
        let t0 = Instant::now();
        let mut p = Pacer::new(f64::INFINITY, 1, t0);
        assert!((0..1000).all(|_| p.try_take(t0)));
    }
}
