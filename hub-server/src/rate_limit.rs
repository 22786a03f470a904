//! Per-connection token bucket: `rate` frames per second on average, bursts up to `burst`.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            rate: f64::from(rate_per_sec),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next token, for error messages and tests.
    pub fn refill_time(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens).max(0.0)) / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        assert_eq!((0..8).filter(|_| b.try_take(t0)).count(), 5, "the burst");
        assert!(!b.try_take(t0));
        assert!(b.refill_time() <= Duration::from_millis(100));
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(
            (0..8).filter(|_| b.try_take(t1)).count(),
            3,
            "10/s for 0.3 s"
        );
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(
            (0..8).filter(|_| b.try_take(t2)).count(),
            5,
            "never more than the burst"
        );
    }
}
