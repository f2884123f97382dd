//! Copies bytes both ways until either side ends, and stops at once when a new generation's
//! policy no longer allows the connection; and the accept loop every listener runs.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::generation::Generation;

/// How a relay ended.
pub enum Ended {
    /// One side closed; bytes (a→b, b→a).
    Done(u64, u64),
    /// An I/O error.
    Failed(std::io::Error),
    /// The policy changed and no longer allows the connection.
    Revoked,
}

/// Relays between `a` and `b`; `still_allowed` is asked on every new generation.
pub async fn relay<A, B>(
    a: &mut A,
    b: &mut B,
    mut current: watch::Receiver<Arc<Generation>>,
    still_allowed: impl Fn(&Generation) -> bool,
) -> Ended
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    current.mark_unchanged();
    let copy = tokio::io::copy_bidirectional(a, b);
    tokio::pin!(copy);
    let done = |r: std::io::Result<(u64, u64)>| match r {
        Ok((ab, ba)) => Ended::Done(ab, ba),
        Err(e) => Ended::Failed(e),
    };
    // Asked only when a new generation wakes it, not at every byte the copy moves.
    let watch = async {
        loop {
            if current.changed().await.is_err() {
                // The sender is gone (shutting down): finish the copy.
                return false;
            }
            let g = current.borrow_and_update().clone();
            if !still_allowed(&g) {
                return true;
            }
        }
    };
    match first_of(copy.as_mut(), watch).await {
        First::Main(r) => done(r),
        First::Side(true) => Ended::Revoked,
        First::Side(false) => done(copy.await),
    }
}

/// Which of [`first_of`]'s futures finished.
pub(crate) enum First<M, S> {
    Main(M),
    Side(S),
}

/// Runs `main` until it ends, unless `side` ends first. Unlike `select!`, which polls every
/// branch at every wake-up of the task, `side` is polled only when something it waits on
/// woke it: a connection's rare events (a new policy generation, a once-in-10-s timer) cost
/// nothing on the requests and bytes that wake the task thousands of times a second (each
/// poll of a `watch` receiver and a `Sleep` was ~600 instructions per request of ~34k).
pub(crate) async fn first_of<M: Future, S: Future>(
    main: M,
    side: S,
) -> First<M::Output, S::Output> {
    let flag = Arc::new(SideWaker {
        woken: AtomicBool::new(true),
        task: Mutex::new(None),
    });
    let side_waker = Waker::from(flag.clone());
    // The task's waker as last given to `side`'s waker: renewed only when it changes.
    let mut given: Option<Waker> = None;
    tokio::pin!(main);
    tokio::pin!(side);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = main.as_mut().poll(cx) {
            return Poll::Ready(First::Main(out));
        }
        if !given.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            given = Some(cx.waker().clone());
            if let Ok(mut task) = flag.task.lock() {
                *task = given.clone();
            }
        }
        // Cleared before the poll: a wake-up during it sets it again and wakes the task.
        if flag.woken.swap(false, Ordering::AcqRel) {
            if let Poll::Ready(out) = side.as_mut().poll(&mut Context::from_waker(&side_waker)) {
                return Poll::Ready(First::Side(out));
            }
        }
        Poll::Pending
    })
    .await
}

/// `first_of`'s waker for its side future: marks it woken, then wakes the task.
struct SideWaker {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for SideWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Ok(task) = self.task.lock() {
            if let Some(task) = task.as_ref() {
                task.wake_by_ref();
            }
        }
    }
}

/// How a relay ended, as log fields and metrics (`direction`: inbound, outbound, egress).
/// `Done` counts bytes as (to the peer, from the peer); `why_revoked` is asked only when the
/// policy cut the connection.
pub(crate) fn ended_fields(
    ctx: &super::Ctx,
    direction: &str,
    event: super::log::Event,
    started: std::time::Instant,
    ended: Ended,
    why_revoked: impl FnOnce() -> String,
) -> super::log::Event {
    let event = event.with("rampart.duration_ms", started.elapsed().as_secs_f64() * 1e3);
    match ended {
        Ended::Done(to_peer, from_peer) => {
            for (way, n) in [("to_peer", to_peer), ("from_peer", from_peer)] {
                ctx.metrics
                    .bytes
                    .with_label_values(&[direction, way])
                    .inc_by(n);
            }
            event
                .with("rampart.bytes.to_peer", to_peer)
                .with("rampart.bytes.from_peer", from_peer)
        }
        Ended::Failed(e) => event.with("error.message", e.to_string()),
        Ended::Revoked => {
            ctx.metrics
                .closed_by_policy
                .with_label_values(&[direction])
                .inc();
            event
                .with("rampart.closed_by_policy", true)
                .with("rampart.closed.reason", why_revoked())
        }
    }
}

/// Accepts connections on `listener` until the process ends: `TCP_NODELAY` on each (a relayed
/// request must not wait for Nagle), then `on_accept`. An accept error (e.g. out of file
/// descriptors) is logged with `what` naming the listener and retried after 50 ms.
pub(crate) async fn accept_each(
    ctx: &super::Ctx,
    listener: &TcpListener,
    what: impl Fn() -> String,
    mut on_accept: impl FnMut(TcpStream, SocketAddr),
) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                on_accept(tcp, peer);
            }
            Err(e) => {
                ctx.emit(
                    super::log::Event::new("error")
                        .with("error.message", format!("accept {}: {e}", what())),
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::mpsc;

    /// A future that counts its polls and ends when `rx` yields.
    fn counted<'a, T: 'a>(
        polls: &'a AtomicUsize,
        mut rx: mpsc::UnboundedReceiver<T>,
    ) -> impl Future<Output = Option<T>> + 'a {
        std::future::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            rx.poll_recv(cx)
        })
    }

    #[tokio::test]
    async fn the_side_future_is_polled_only_when_it_is_woken() {
        let deadline = Duration::from_secs(10);
        // The main future is woken 1,000 times (one message each) and then ends; the side
        // future is never woken: polled once, to register its waker.
        let (main_tx, mut main_rx) = mpsc::unbounded_channel::<u32>();
        let (_side_tx, side_rx) = mpsc::unbounded_channel::<()>();
        let side_polls = AtomicUsize::new(0);
        let main = async {
            let mut n = 0;
            while main_rx.recv().await.is_some() {
                n += 1;
            }
            n
        };
        let feed = async {
            for i in 0..1000 {
                main_tx.send(i).unwrap();
                tokio::task::yield_now().await;
            }
            drop(main_tx);
        };
        let (first, ()) = tokio::time::timeout(deadline, async {
            tokio::join!(first_of(main, counted(&side_polls, side_rx)), feed)
        })
        .await
        .expect("first_of did not end");
        assert!(matches!(first, First::Main(1000)));
        assert_eq!(side_polls.load(Ordering::Relaxed), 1);

        // A wake-up of the side future ends it, while the main one never ends.
        let (side_tx, side_rx) = mpsc::unbounded_channel::<&str>();
        let side_polls = AtomicUsize::new(0);
        let never = std::future::pending::<()>();
        let send = async {
            tokio::task::yield_now().await;
            side_tx.send("revoked").unwrap();
        };
        let (first, ()) = tokio::time::timeout(deadline, async {
            tokio::join!(first_of(never, counted(&side_polls, side_rx)), send)
        })
        .await
        .expect("the side future's wake-up was lost");
        assert!(matches!(first, First::Side(Some("revoked"))));
        assert_eq!(side_polls.load(Ordering::Relaxed), 2);
    }
}
