//! The reconnect delay: exponential backoff with full jitter. Attempt n (from 0) waits a uniformly
//! random time in [0, min(max, min·2^n)). Full jitter, rather than a fixed floor plus a little
//! noise, is what spreads thousands of clients of a hub that died at one instant over the whole
//! window instead of bringing them back in waves.

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// `0 < min <= max` (checked by the options).
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// Failed attempts counted so far.
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The upper bound of attempt `n`'s delay.
    pub(crate) fn cap(&self, n: u32) -> Duration {
        // 2^n is capped long before it could overflow: min·2^n >= max once n reaches ~64.
        let factor = 1u64 << n.min(62);
        let ms = (self.min.as_secs_f64() * factor as f64).min(self.max.as_secs_f64());
        Duration::from_secs_f64(ms)
    }

    /// The delay before the next attempt; each call counts one more failed attempt.
    pub(crate) fn next(&mut self) -> Duration {
        self.next_with(rand::random::<f64>())
    }

    /// [`Backoff::next`] with the random draw `r` in [0, 1) given (tests).
    pub(crate) fn next_with(&mut self, r: f64) -> Duration {
        let delay = self.cap(self.attempt).mul_f64(r.clamp(0.0, 1.0));
        self.attempt = (self.attempt + 1).min(64);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_doubles_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let caps: Vec<u128> = (0..6).map(|n| b.cap(n).as_millis()).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.cap(500), Duration::from_millis(1000));
    }

    #[test]
    fn each_delay_is_a_share_of_its_window() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        assert_eq!(b.next_with(0.5), Duration::from_millis(50));
        assert_eq!(b.next_with(0.5), Duration::from_millis(100));
        assert_eq!(b.next_with(0.0), Duration::ZERO);
        assert_eq!(b.attempt(), 3);
        b.reset();
        assert_eq!(b.next_with(0.999), Duration::from_micros(99_900));
    }

    /// Full jitter: 10,000 clients of one dead hub spread over the whole window, not in a wave
    /// at its end (the JavaScript SDK's spread test shows the same for real sockets).
    #[test]
    fn ten_thousand_clients_spread_evenly_over_the_window() {
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_millis(1000));
            let d = b.next();
            assert!(d < Duration::from_millis(1000));
            buckets[(d.as_millis() / 100) as usize] += 1;
        }
        // Each tenth of the window gets ~1000; a wave would put most in one bucket.
        for (i, n) in buckets.iter().enumerate() {
            assert!(
                (800..1200).contains(n),
                "bucket {i}: {n} of 10000 ({buckets:?})"
            );
        }
    }
}
