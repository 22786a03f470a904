//! Reconnect delays: exponential with full jitter (a uniform draw below the exponential bound), so
//! the clients of a dead hub spread their reconnects instead of arriving at the others at once.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before attempt `attempt` (0 = the first after the loss); `unit` is a uniform draw
    /// in [0, 1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let bound = self
            .base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        bound.mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_doubling_with_full_jitter() {
        let b = Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(10),
        };
        assert_eq!(b.delay(0, 0.0), Duration::ZERO);
        assert_eq!(b.delay(0, 0.5), Duration::from_millis(250));
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(500));
        assert_eq!(b.delay(3, 0.999_999).as_millis(), 3999);
        assert_eq!(b.delay(10, 0.5), Duration::from_secs(5), "capped at max");
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(10));
    }
}
