//! Backend calls one session started ahead of their lane's turn (a proxied publish asks the
//! backend at once; only its verdict waits for the messages sent before it): at most
//! [`MAX_CALLS`] in flight per session, the others waiting, in arrival order, for a place.
//!
//! The per-session bound keeps one client from taking the hub-wide `proxy_concurrency` for
//! itself: past it, that client's later calls wait here instead of being refused `unavailable`.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};

/// Backend calls in flight at once per session, at most. 16 keeps a publisher at 16 messages per
/// backend round trip (16,000/s at 1 ms), a sixteenth of the hub's default `proxy_concurrency`.
pub const MAX_CALLS: usize = 16;

/// A call: done when the future is (its answer goes where the call's future sends it).
pub type Call<'a> = BoxFuture<'a, ()>;

#[derive(Default)]
pub(in crate::session) struct Calls<'a> {
    in_flight: FuturesUnordered<Call<'a>>,
    /// Calls not started yet: a call that is not polled has not reached the backend.
    waiting: VecDeque<Call<'a>>,
}

impl<'a> Calls<'a> {
    /// Starts `call` now, or once fewer than [`MAX_CALLS`] are in flight.
    pub fn start(&mut self, call: Call<'a>) {
        if self.in_flight.len() < MAX_CALLS {
            self.in_flight.push(call);
        } else {
            self.waiting.push_back(call);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty() && self.waiting.is_empty()
    }

    /// Drives the calls in flight; each one done makes room for the next waiting. Ready once at
    /// least one call is done in this poll.
    pub fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut done = false;
        while let Poll::Ready(Some(())) = self.in_flight.poll_next_unpin(cx) {
            done = true;
            if let Some(next) = self.waiting.pop_front() {
                self.in_flight.push(next);
            }
        }
        match done {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn past_the_bound_a_call_starts_only_when_one_in_flight_is_done() {
        let started = Arc::new(AtomicUsize::new(0));
        let mut calls = Calls::default();
        let mut gates = Vec::new();
        for _ in 0..MAX_CALLS + 2 {
            let (tx, rx) = oneshot::channel::<()>();
            gates.push(tx);
            let started = started.clone();
            calls.start(Box::pin(async move {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = rx.await;
            }));
        }
        let poll_once = |calls: &mut Calls<'_>| {
            let waker = futures_util::task::noop_waker();
            calls.poll_done(&mut Context::from_waker(&waker))
        };
        assert!(poll_once(&mut calls).is_pending());
        assert_eq!(started.load(Ordering::SeqCst), MAX_CALLS, "the bound holds");
        // The last in flight is done: the first waiting one starts, not the second.
        drop(gates.remove(MAX_CALLS - 1));
        assert!(poll_once(&mut calls).is_ready());
        assert!(poll_once(&mut calls).is_pending());
        assert_eq!(started.load(Ordering::SeqCst), MAX_CALLS + 1);
        gates.clear();
        while !calls.is_empty() {
            std::future::poll_fn(|cx| calls.poll_done(cx)).await;
        }
        assert_eq!(started.load(Ordering::SeqCst), MAX_CALLS + 2);
    }
}
