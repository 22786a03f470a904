//! Capped exponential backoff with full jitter, so hubs that lost Redis together do not all
//! reconnect in the same millisecond.

use std::time::Duration;

use rand::Rng;

#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(cap: Duration) -> Self {
        Backoff {
            base: Duration::from_millis(100),
            cap,
            attempt: 0,
        }
    }

    /// The next delay: uniform in [ceiling/2, ceiling], ceiling doubling up to `cap`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_under_the_cap_and_reset() {
        let cap = Duration::from_secs(2);
        let mut b = Backoff::new(cap);
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..40 {
            let d = b.next_delay();
            assert!(
                d <= cap && d >= cap / 2 || d < cap / 2 && b.attempt < 6,
                "{d:?}"
            );
        }
        assert!(
            b.next_delay() >= cap / 2,
            "after many attempts the delay sits near the cap"
        );
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
