//! One open connection's place in the per-IP table: what it is waiting for
//! (so the cap can evict a stalled connection instead of refusing a new one)
//! and the eviction signal its stream watches.
//!
//! A connection is *stalled* while the server waits on its client for bytes
//! the client owes: a request head not yet complete (fresh connection, TLS
//! handshake, first byte not sent, or head trickled in), or a request body
//! behind `slow_clients.min_body_rate`. It is *established* otherwise: a
//! request being served, a body arriving at a fair rate, an idle keep-alive
//! connection after a served request, or HTTP/2. Only stalled connections
//! are evicted: they are what a slowloris holds, and each would be cut off
//! by the header deadline or the body rate anyway; evicting them only brings
//! that forward while the IP is at its cap. The state is written by the
//! slow-client guard, which follows the request framing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::{Context, Waker};
use std::time::Instant;

const HEAD: u8 = 0;
const BODY: u8 = 1;
const ESTABLISHED: u8 = 2;

#[derive(Debug)]
pub struct ConnSlot {
    opened: Instant,
    peer: Option<SocketAddr>,
    state: AtomicU8,
    /// For `BODY`: ms after `opened` from which the body is behind the rate.
    body_behind_at_ms: AtomicU64,
    /// The slots were given back (by eviction or by drop); set once.
    pub(super) released: AtomicBool,
    evicted: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// The app took the slot through [`current`].
    taken: AtomicBool,
}

impl ConnSlot {
    pub(super) fn new(peer: Option<SocketAddr>) -> Self {
        Self {
            opened: Instant::now(),
            peer,
            state: AtomicU8::new(HEAD),
            body_behind_at_ms: AtomicU64::new(0),
            released: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
            taken: AtomicBool::new(false),
        }
    }

    /// The app took the slot ([`current`]): it no longer needs offering.
    pub fn is_taken(&self) -> bool {
        self.taken.load(Ordering::Relaxed)
    }

    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Waiting on the client for (the rest of) a request head.
    pub fn waiting_for_head(&self) {
        self.state.store(HEAD, Ordering::Relaxed);
    }

    /// Waiting on the client for body bytes; from `behind_at` on, the body
    /// is behind the minimum rate.
    pub fn waiting_for_body(&self, behind_at: Instant) {
        let ms = behind_at.saturating_duration_since(self.opened).as_millis();
        self.body_behind_at_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.state.store(BODY, Ordering::Relaxed);
    }

    /// Being served, idle in keep-alive, or not followed (HTTP/2).
    pub fn established(&self) {
        self.state.store(ESTABLISHED, Ordering::Relaxed);
    }

    /// What a stalled connection is waiting for; `None` if established.
    pub fn stalled_on(&self, now: Instant) -> Option<&'static str> {
        match self.state.load(Ordering::Relaxed) {
            HEAD => Some("waiting for a request head"),
            BODY => {
                let since = now.saturating_duration_since(self.opened).as_millis();
                let behind_at = u128::from(self.body_behind_at_ms.load(Ordering::Relaxed));
                (since >= behind_at).then_some("sending a request body below the minimum rate")
            }
            _ => None,
        }
    }

    /// Tells the connection's stream to fail its next read.
    pub(super) fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        let waker = self.lock_waker().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Registers the reader to be woken on eviction; true if evicted already.
    pub fn register(&self, cx: &Context<'_>) -> bool {
        {
            let mut slot = self.lock_waker();
            match slot.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        self.is_evicted()
    }

    fn lock_waker(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.waker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

tokio::task_local! {
    /// The slot of the connection whose task this is, while `ConnTracked`
    /// hands a new connection to the app and until the app takes it
    /// ([`current`]): lets the slow-client guard, built after TLS, reach the
    /// slot of the raw TCP connection.
    pub static CURRENT: std::sync::Arc<ConnSlot>;
}

/// The current connection's slot, inside `ConnTracked`'s first call, taken:
/// from then on `ConnTracked` polls the app without the task-local (each
/// poll inside it swaps the value in and out, and an HTTP/1 connection's
/// whole keep-alive loop runs inside that first call).
pub fn current() -> Option<std::sync::Arc<ConnSlot>> {
    CURRENT
        .try_with(|s| {
            s.taken.store(true, Ordering::Relaxed);
            s.clone()
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stalled_until_established_and_body_only_when_behind() {
        let s = ConnSlot::new(None);
        let now = Instant::now();
        assert!(s.stalled_on(now).is_some(), "fresh connection is stalled");
        s.established();
        assert_eq!(s.stalled_on(now), None);
        s.waiting_for_body(now + Duration::from_secs(60));
        assert_eq!(s.stalled_on(now), None, "body still within its earned time");
        assert!(s.stalled_on(now + Duration::from_secs(61)).is_some());
        s.waiting_for_head();
        assert!(s.stalled_on(now).is_some());
    }
}
