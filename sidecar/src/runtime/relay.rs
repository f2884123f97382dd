//! Copies bytes both ways until both directions have ended, and stops at once when a new
//! generation's policy no longer allows the connection; and the accept loop every listener
//! runs.

use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;

use super::generation::Generation;

/// How a relay ended.
pub enum Ended {
    /// Both directions ended (each reader's end reached and the other side shut down);
    /// bytes (a→b, b→a).
    Done(u64, u64),
    /// An I/O error.
    Failed(std::io::Error),
    /// The policy changed and no longer allows the connection.
    Revoked,
}

/// Relays between `a` and `b`; `still_allowed` is asked on every new generation.
///
/// Each direction is a lane of its own ([`Lanes`]), polled only when its own waker fired: the
/// bytes that arrive on one side do not poll the other direction (a read that would find
/// nothing: ~300 instructions through tokio, and through rustls on the TLS side), and the
/// policy's `watch` is polled only when a new generation wakes it.
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
    // Ends only when revoked; once the sender is gone (shutting down), never: the copy
    // finishes.
    // Off tokio's co-operative budget (`unconstrained`): the copy lanes, polled before it, may
    // spend the whole budget at every poll of the task (a peer sending many tiny records), and
    // `changed()` would then answer `Pending` for ever — the revoked connection kept. This
    // lane does one generation's check per wake-up, so it cannot hold the thread.
    let watch = tokio::task::coop::unconstrained(async {
        loop {
            if current.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            let g = current.borrow_and_update().clone();
            if !still_allowed(&g) {
                return;
            }
        }
    });
    tokio::pin!(watch);
    let (mut ab, mut ba) = (Direction::new(), Direction::new());
    let mut lanes = Lanes::<3>::new();
    std::future::poll_fn(|cx| {
        lanes.poll(cx, |lane, cx| {
            let step = match lane {
                0 => ab.poll(cx, a, b),
                1 => ba.poll(cx, b, a),
                _ => return watch.as_mut().poll(cx).map(|()| Ended::Revoked),
            };
            match step {
                Poll::Ready(Err(e)) => Poll::Ready(Ended::Failed(e)),
                Poll::Ready(Ok(())) if ab.done && ba.done => {
                    Poll::Ready(Ended::Done(ab.copied, ba.copied))
                }
                _ => Poll::Pending,
            }
        })
    })
    .await
}

/// A TLS stream read by what rustls has decrypted: `poll_read` hands over the plaintext rustls
/// holds (every record the last socket read brought, up to the caller's buffer), without
/// trying the socket again to fill the rest of the caller's buffer, which tokio-rustls's own
/// `poll_read` does — a read that finds nothing (~300 instructions through rustls and tokio)
/// after every message, since a request or an answer arrives whole in one socket read. Used
/// for the sidecar's mesh TLS streams (inbound, outbound and egress relays, the HTTP port, the
/// egress gateway's HTTP engine; not the plain-HTTP egress's client through a gateway, which
/// hyper reads); writes go straight through.
pub(crate) struct ByRecord<S>(pub(crate) S);

/// A TLS stream whose decrypted plaintext can be taken without a read of the socket.
pub(crate) trait Decrypted {
    /// What rustls has already decrypted (`WouldBlock` when nothing).
    fn decrypted(&mut self) -> rustls::Reader<'_>;
    /// rustls holds no plaintext and waits for the socket's bytes.
    fn wants_read(&self) -> bool;
    /// The socket's read readiness (tokio's; the task's waker registered when `Pending`).
    fn poll_socket_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// The server and the client stream: the same calls on their two connection types.
macro_rules! decrypted_tls_stream {
    ($($stream:ty),+) => {$(
        impl Decrypted for $stream {
            fn decrypted(&mut self) -> rustls::Reader<'_> {
                self.get_mut().1.reader()
            }

            fn wants_read(&self) -> bool {
                self.get_ref().1.wants_read()
            }

            fn poll_socket_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_ref().0.poll_read_ready(cx)
            }
        }
    )+};
}

decrypted_tls_stream!(
    tokio_rustls::server::TlsStream<TcpStream>,
    tokio_rustls::client::TlsStream<TcpStream>
);

impl<S: AsyncBufRead + Decrypted + Unpin> AsyncRead for ByRecord<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let inner = &mut self.get_mut().0;
        // Nothing decrypted and the socket not readable (tokio cleared its readiness when the
        // last read came back short): `Pending` here, with the waker registered as the read
        // would, not through tokio-rustls's read path down to the same answer (~1k instructions
        // for hyper's probe after each response, ~300 on a relay after each record).
        if inner.wants_read() {
            ready!(inner.poll_socket_readable(cx))?;
        }
        // The first record: reads the socket only when rustls holds nothing.
        let data = ready!(Pin::new(&mut *inner).poll_fill_buf(cx))?;
        let n = data.len().min(buf.remaining());
        buf.put_slice(&data[..n]);
        Pin::new(&mut *inner).consume(n);
        if n == 0 {
            return Poll::Ready(Ok(()));
        }
        // The records the same socket read brought (a message sent as several records): taken
        // now, so that they leave in one write, not one write each. Never the socket: an empty
        // chunk (`close_notify`), `WouldBlock` (nothing more) or an error ends the loop, and
        // the next read meets them through `poll_fill_buf`.
        let mut reader = inner.decrypted();
        while buf.remaining() > 0 {
            let Ok(chunk) = std::io::BufRead::fill_buf(&mut reader) else {
                break;
            };
            if chunk.is_empty() {
                break;
            }
            let m = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..m]);
            std::io::BufRead::consume(&mut reader, m);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ByRecord<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Largest size of each direction's buffer: the plaintext of the largest TLS record (16 KiB), so
/// that a message read whole from the app leaves as one record in one `write`, and a peer's full
/// record reaches the app in one `write` (tokio's `copy_bidirectional`'s 8 KiB made a bulk
/// transfer two records and two writes per 16 KiB on the sending side, and two app writes per
/// full record on the receiving side).
const COPY_BUFFER: usize = 16 * 1024;

/// First size of each direction's buffer, allocated at its first read: a direction that only
/// ever carries small messages (requests, answers, pings) keeps 4 KiB, not 16 KiB, for the life
/// of the connection (two directions on each side of every relayed connection). The first read
/// that fills it grows it to [`COPY_BUFFER`] at once and reads on, so a large message still
/// leaves whole.
const FIRST_BUFFER: usize = 4 * 1024;

/// One direction of [`relay`]: what is read from one side is written to the other; at the
/// reader's end the writer is shut down (the other direction goes on), as tokio's
/// `copy_bidirectional` does.
struct Direction {
    /// Empty until the first read; then [`FIRST_BUFFER`], or [`COPY_BUFFER`] once a read
    /// filled it.
    buf: Vec<u8>,
    /// An error met by the read that followed the buffer's growth, after bytes had been read:
    /// those bytes are written first, then the next read returns it.
    deferred: Option<io::Error>,
    /// The bytes of `buf` still to write: `pos..cap`.
    pos: usize,
    cap: usize,
    /// Bytes written.
    copied: u64,
    /// The reader has ended.
    eof: bool,
    /// Written since the last flush.
    need_flush: bool,
    /// Ended: the reader's end reached and the writer shut down.
    done: bool,
}

impl Direction {
    fn new() -> Self {
        Direction {
            buf: Vec::new(),
            deferred: None,
            pos: 0,
            cap: 0,
            copied: 0,
            eof: false,
            need_flush: false,
            done: false,
        }
    }

    /// Copies until the reader has nothing more for now (`Pending`), or until the reader's
    /// end, the writer flushed and shut down (`Ready(Ok)`, then `done`).
    fn poll<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        // The end is acted on only once every byte read has been written: the read on after the
        // buffer's growth can meet the end with bytes still to write, and a busy writer
        // (`Pending`) leaves them for the next poll.
        loop {
            if self.pos == self.cap {
                if self.eof {
                    break;
                }
                if let Some(e) = self.deferred.take() {
                    return Poll::Ready(Err(e));
                }
                if self.buf.is_empty() {
                    self.first_buffer();
                }
                let mut buf = ReadBuf::new(&mut self.buf);
                match Pin::new(&mut *r).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => {
                        let n = buf.filled().len();
                        (self.pos, self.cap) = (0, n);
                        self.eof = n == 0;
                        if n == self.buf.len() && n < COPY_BUFFER {
                            self.grow_and_read_on(cx, r);
                        }
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        // Nothing more to read for now: what was written leaves.
                        if self.need_flush {
                            ready!(Pin::new(&mut *w).poll_flush(cx))?;
                            self.need_flush = false;
                        }
                        return Poll::Pending;
                    }
                }
            }
            while self.pos < self.cap {
                match ready!(Pin::new(&mut *w).poll_write(cx, &self.buf[self.pos..self.cap])) {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => {
                        self.pos += n;
                        self.copied += n as u64;
                        self.need_flush = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
        if self.need_flush {
            ready!(Pin::new(&mut *w).poll_flush(cx))?;
            self.need_flush = false;
        }
        ready!(Pin::new(&mut *w).poll_shutdown(cx))?;
        self.done = true;
        Poll::Ready(Ok(()))
    }

    /// The buffer, at the first read.
    #[cold]
    #[inline(never)]
    fn first_buffer(&mut self) {
        self.buf = vec![0; FIRST_BUFFER];
    }

    /// The read filled the first buffer: grows it to [`COPY_BUFFER`] (for the rest of the
    /// connection) and reads on into the new room, so that what is already there leaves with
    /// what was read, in one write. `Pending` there is nothing more for now (the reader's
    /// waker is registered, as by any read); an error is kept for the next read, after the
    /// bytes read are written. Out of line: once per direction at most, kept out of the
    /// per-message loop.
    #[cold]
    #[inline(never)]
    fn grow_and_read_on<R: AsyncRead + Unpin>(&mut self, cx: &mut Context<'_>, r: &mut R) {
        self.buf.resize(COPY_BUFFER, 0);
        loop {
            let mut more = ReadBuf::new(&mut self.buf[self.cap..]);
            match Pin::new(&mut *r).poll_read(cx, &mut more) {
                Poll::Ready(Ok(())) => {
                    let m = more.filled().len();
                    self.cap += m;
                    // The end after the bytes read: they are written, then the writer is shut.
                    self.eof = m == 0;
                    return;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    self.deferred = Some(e);
                    return;
                }
                Poll::Pending => return,
            }
        }
    }
}

/// How many rounds [`Lanes::poll`] runs in one poll of its task before it yields: lanes that
/// keep waking each other (or tokio's co-operative budget, spent, waking them) must not keep
/// the thread from the other tasks.
const LANE_ROUNDS: usize = 32;

/// `N` futures driven by one task, each polled only when its own waker fired (lane `i`'s
/// waker sets bit `i`). A wake-up that comes while the lanes are being polled (one lane
/// answering another: a request handed to the app connection, its response handed back) is
/// taken by the same poll, without a second wake-up and poll of the task — what two tasks
/// would pay at each hand-off (a wake-up, a pass through the scheduler, a poll).
pub(crate) struct Lanes<const N: usize> {
    state: Arc<LaneState>,
    wakers: [Waker; N],
    /// The task's waker as last given to `state`: renewed only when it changes.
    given: Option<Waker>,
}

struct LaneState {
    /// Bit `i`: lane `i` was woken since it was last polled.
    woken: AtomicUsize,
    /// Set while [`Lanes::poll`] polls its lanes: a wake-up then only sets its bit, which the
    /// running poll takes.
    polling: AtomicBool,
    /// The task's waker.
    task: Mutex<Option<Waker>>,
}

/// One lane's waker.
struct LaneWaker {
    state: Arc<LaneState>,
    bit: usize,
}

impl Wake for LaneWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // SeqCst, paired with `Lanes::poll`'s: either the poll sees the bit after it clears
        // `polling`, or this sees `polling` cleared and wakes the task.
        self.state.woken.fetch_or(self.bit, Ordering::SeqCst);
        if !self.state.polling.load(Ordering::SeqCst) {
            if let Ok(task) = self.state.task.lock() {
                if let Some(task) = task.as_ref() {
                    task.wake_by_ref();
                }
            }
        }
    }
}

impl<const N: usize> Lanes<N> {
    /// Every lane marked woken: each is polled at the first poll.
    pub(crate) fn new() -> Self {
        let state = Arc::new(LaneState {
            woken: AtomicUsize::new((1 << N) - 1),
            polling: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        let wakers = std::array::from_fn(|i| {
            Waker::from(Arc::new(LaneWaker {
                state: state.clone(),
                bit: 1 << i,
            }))
        });
        Lanes {
            state,
            wakers,
            given: None,
        }
    }

    /// Lane `lane`'s waker (e.g. to have it polled when something new is put in it).
    pub(crate) fn waker(&self, lane: usize) -> Waker {
        self.wakers[lane].clone()
    }

    /// Polls the woken lanes (`poll_lane(i, cx)`, with lane `i`'s waker in `cx`), again while
    /// any wakes another, until none is woken (`Pending`) or one is ready (its output).
    pub(crate) fn poll<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut poll_lane: impl FnMut(usize, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        if !self.given.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.given = Some(cx.waker().clone());
            if let Ok(mut task) = self.state.task.lock() {
                *task = self.given.clone();
            }
        }
        let state = &*self.state;
        state.polling.store(true, Ordering::SeqCst);
        for _ in 0..LANE_ROUNDS {
            let mut woken = state.woken.swap(0, Ordering::SeqCst);
            if woken == 0 {
                state.polling.store(false, Ordering::SeqCst);
                if state.woken.load(Ordering::SeqCst) == 0 {
                    return Poll::Pending;
                }
                // Woken from another thread as the round ended: one more round.
                state.polling.store(true, Ordering::SeqCst);
                continue;
            }
            while woken != 0 {
                let lane = woken.trailing_zeros() as usize;
                woken &= woken - 1;
                let Some(waker) = self.wakers.get(lane) else {
                    continue;
                };
                if let Poll::Ready(out) = poll_lane(lane, &mut Context::from_waker(waker)) {
                    state.polling.store(false, Ordering::SeqCst);
                    return Poll::Ready(out);
                }
            }
        }
        // Still woken after every round: yield (the bits stay set for the next poll).
        state.polling.store(false, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
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
    let event = event.with(
        "rampart.duration_ms",
        rampart_ops::json_log::millis(started.elapsed()),
    );
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

    fn empty_generation() -> Arc<Generation> {
        Arc::new(Generation {
            policy: Arc::new(crate::policy::Policy::deny_all()),
            directory: Arc::new(crate::directory::Directory::empty()),
        })
    }

    /// Which of two lanes ended first, with its output.
    enum Ended2<A, B> {
        First(A),
        Second(B),
    }

    /// Drives `first` and `second` as two lanes of one task.
    async fn two_lanes<A: Future, B: Future>(first: A, second: B) -> Ended2<A::Output, B::Output> {
        let mut lanes = Lanes::<2>::new();
        tokio::pin!(first);
        tokio::pin!(second);
        std::future::poll_fn(|cx| {
            lanes.poll(cx, |lane, cx| match lane {
                0 => first.as_mut().poll(cx).map(Ended2::First),
                _ => second.as_mut().poll(cx).map(Ended2::Second),
            })
        })
        .await
    }

    #[tokio::test]
    async fn a_lane_is_polled_only_when_it_is_woken() {
        let deadline = Duration::from_secs(10);
        // The first lane is woken 1,000 times (one message each) and then ends; the second
        // is never woken: polled once, to register its waker.
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
            tokio::join!(two_lanes(main, counted(&side_polls, side_rx)), feed)
        })
        .await
        .expect("the lanes did not end");
        assert!(matches!(first, Ended2::First(1000)));
        assert_eq!(side_polls.load(Ordering::Relaxed), 1);

        // A wake-up of the second lane ends it, while the first never ends; the first is
        // not polled again.
        let (side_tx, side_rx) = mpsc::unbounded_channel::<&str>();
        let (side_polls, never_polls) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (_never_tx, never_rx) = mpsc::unbounded_channel::<()>();
        let send = async {
            tokio::task::yield_now().await;
            side_tx.send("revoked").unwrap();
        };
        let (first, ()) = tokio::time::timeout(deadline, async {
            let lanes = two_lanes(
                counted(&never_polls, never_rx),
                counted(&side_polls, side_rx),
            );
            tokio::join!(lanes, send)
        })
        .await
        .expect("the second lane's wake-up was lost");
        assert!(matches!(first, Ended2::Second(Some("revoked"))));
        assert_eq!(side_polls.load(Ordering::Relaxed), 2);
        assert_eq!(never_polls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_lane_woken_by_another_is_polled_in_the_same_poll_of_the_task() {
        // Lane 0 waits for what lane 1 sends: without lanes, the receiver's wake-up would
        // cost the task a second poll (two tasks: a second task); here one poll ends both.
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        let mut tx = Some(tx);
        let lanes = two_lanes(std::future::poll_fn(|cx| rx.poll_recv(cx)), async {
            if let Some(tx) = tx.take() {
                tx.send(7).unwrap();
            }
            std::future::pending::<()>().await
        });
        tokio::pin!(lanes);
        let mut task_polls = 0;
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            std::future::poll_fn(|cx| {
                task_polls += 1;
                lanes.as_mut().poll(cx)
            }),
        )
        .await
        .expect("the lanes did not end");
        assert!(matches!(out, Ended2::First(Some(7))));
        assert_eq!(task_polls, 1);
    }

    #[tokio::test]
    async fn lanes_that_keep_waking_yield_to_other_tasks() {
        // A lane that wakes itself at every poll: the task must still let others run (here
        // the other branch of the join, which is what ends the lane).
        let stop = std::sync::atomic::AtomicBool::new(false);
        let spinning = std::future::poll_fn(|cx| {
            if stop.load(Ordering::Relaxed) {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        let stopper = async {
            tokio::task::yield_now().await;
            stop.store(true, Ordering::Relaxed);
        };
        let (out, ()) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(two_lanes(spinning, std::future::pending::<()>()), stopper)
        })
        .await
        .expect("a self-waking lane kept the task from yielding");
        assert!(matches!(out, Ended2::First(())));
    }

    #[tokio::test]
    async fn the_relay_copies_both_ways_and_each_end_shuts_the_other_side() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (current_tx, current) = watch::channel(empty_generation());
        let (mut a, mut a_peer) = tokio::io::duplex(64);
        let (mut b, mut b_peer) = tokio::io::duplex(64);
        // More than the duplex pipes and a relay buffer hold: the copy must wait on writes.
        let big: Vec<u8> = (0..3 * COPY_BUFFER).map(|i| i as u8).collect();
        let peers = async {
            let (a_side, b_side) = tokio::join!(
                async {
                    a_peer.write_all(&big).await.unwrap();
                    a_peer.shutdown().await.unwrap();
                    let mut back = Vec::new();
                    a_peer.read_to_end(&mut back).await.unwrap();
                    back
                },
                async {
                    let mut got = Vec::new();
                    b_peer.read_to_end(&mut got).await.unwrap();
                    // a's end reached b; b still answers, then ends.
                    b_peer.write_all(b"answer").await.unwrap();
                    b_peer.shutdown().await.unwrap();
                    got
                }
            );
            (a_side, b_side)
        };
        let (ended, (back, got)) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(relay(&mut a, &mut b, current, |_| true), peers)
        })
        .await
        .expect("the relay did not end");
        drop(current_tx);
        assert!(got == big, "a to b: {} bytes arrived", got.len());
        assert_eq!(back, b"answer");
        assert!(matches!(ended, Ended::Done(n, 6) if n == big.len() as u64));
    }

    /// A TLS connection over loopback: the server's stream, and the client's once handshaken.
    async fn tls_pair() -> (
        tokio_rustls::server::TlsStream<TcpStream>,
        tokio_rustls::client::TlsStream<TcpStream>,
    ) {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![key.cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der())),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(key.cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(server))
                .accept(tcp)
                .await
                .unwrap()
        };
        let connect = async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            tokio_rustls::TlsConnector::from(Arc::new(client))
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap()
        };
        tokio::join!(accept, connect)
    }

    #[tokio::test]
    async fn the_records_of_one_socket_read_come_out_of_one_read() {
        use std::io::Write;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tokio::time::timeout(Duration::from_secs(10), async {
            let (server, mut client) = tls_pair().await;
            let mut server = ByRecord(server);
            // Four records (a head, a body in two, and close_notify), in one write of the
            // socket.
            let (tcp, conn) = client.get_mut();
            for record in [&b"head "[..], b"and body", b" more"] {
                conn.writer().write_all(record).unwrap();
            }
            conn.send_close_notify();
            let mut wire = Vec::new();
            while conn.wants_write() {
                conn.write_tls(&mut wire).unwrap();
            }
            tcp.write_all(&wire).await.unwrap();
            // The records in one read each (not one read a record); a buffer smaller than them
            // takes them in parts.
            let mut small = [0u8; 7];
            assert_eq!(server.read(&mut small).await.unwrap(), 7);
            assert_eq!(&small, b"head an");
            let mut buf = [0u8; 8192];
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"d body more");
            // close_notify: the end.
            assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        })
        .await
        .expect("the reads did not end");
    }

    #[tokio::test]
    async fn a_full_record_of_plaintext_leaves_as_one_record() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tokio::time::timeout(Duration::from_secs(10), async {
            let (server, client) = tls_pair().await;
            let (mut wire, _) = server.into_inner();
            let (current_tx, current) = watch::channel(empty_generation());
            // 16 KiB from the app at once (a full TLS record's plaintext).
            let (mut a, mut a_peer) = tokio::io::duplex(64 * 1024);
            a_peer.write_all(&[7u8; 16 * 1024]).await.unwrap();
            let mut b = ByRecord(client);
            let relayed = relay(&mut a, &mut b, current, |_| true);
            // The records on the wire until 16 KiB of plaintext: each a 5-byte header, then
            // the plaintext, its content type and a 16-byte tag (TLS 1.3).
            let records = async {
                let mut sizes = Vec::new();
                while sizes.iter().sum::<usize>() < 16 * 1024 {
                    let mut header = [0u8; 5];
                    wire.read_exact(&mut header).await.unwrap();
                    let mut record =
                        vec![0; usize::from(u16::from_be_bytes([header[3], header[4]]))];
                    wire.read_exact(&mut record).await.unwrap();
                    sizes.push(record.len() - 17);
                }
                sizes
            };
            tokio::select! {
                sizes = records => assert_eq!(sizes, [16 * 1024], "one record, one write"),
                _ = relayed => panic!("the relay ended before the records arrived"),
            }
            drop(current_tx);
        })
        .await
        .expect("the records did not arrive");
    }

    /// A reader that plays `steps` in order, one per `poll_read`: bytes (as many as fit; the rest
    /// stays for the next read), or an error; then the end.
    struct Script(std::collections::VecDeque<Result<Vec<u8>, io::ErrorKind>>);

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.0.pop_front() {
                None => Poll::Ready(Ok(())),
                Some(Err(kind)) => Poll::Ready(Err(kind.into())),
                Some(Ok(mut bytes)) => {
                    let n = bytes.len().min(buf.remaining());
                    buf.put_slice(&bytes[..n]);
                    if n < bytes.len() {
                        self.0.push_front(Ok(bytes.split_off(n)));
                    }
                    Poll::Ready(Ok(()))
                }
            }
        }
    }

    /// A writer that keeps every write apart.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>, bool);

    impl AsyncWrite for Writes {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.1 = true;
            Poll::Ready(Ok(()))
        }
    }

    /// A writer under back-pressure: every other call is `Pending` (waking at once), and a write
    /// takes at most `most` bytes; everything taken is kept in order.
    struct Busy {
        most: usize,
        ready: bool,
        taken: Vec<u8>,
        shut: bool,
    }

    impl AsyncWrite for Busy {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.ready = !self.ready;
            if !self.ready {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = buf.len().min(self.most);
            self.taken.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.shut = true;
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn every_byte_read_is_written_before_the_end_under_back_pressure() {
        // Streams that fill the first buffer exactly, or the grown one, then end; and one that
        // ends at no edge. Each through writers taking 1000 bytes, 4096 bytes or all, with
        // `Pending` between writes: what arrives is the stream, then the end.
        let sizes = [
            FIRST_BUFFER,
            COPY_BUFFER,
            FIRST_BUFFER + COPY_BUFFER,
            FIRST_BUFFER + 2 * COPY_BUFFER,
            5000,
        ];
        for size in sizes {
            let stream: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            for most in [1000, FIRST_BUFFER, usize::MAX] {
                // The stream in one piece from the reader (the read fills the buffer, the read
                // on meets the end), and in pieces the size of the first buffer.
                for pieces in [
                    vec![stream.clone()],
                    stream.chunks(FIRST_BUFFER).map(<[u8]>::to_vec).collect(),
                ] {
                    let mut r = Script(pieces.into_iter().map(Ok).collect());
                    let mut w = Busy {
                        most,
                        ready: false,
                        taken: Vec::new(),
                        shut: false,
                    };
                    let mut d = Direction::new();
                    let mut cx = Context::from_waker(Waker::noop());
                    let mut polls = 0;
                    let ended = loop {
                        polls += 1;
                        assert!(polls < 10_000, "size {size}, most {most}: no end");
                        if let Poll::Ready(ended) = d.poll(&mut cx, &mut r, &mut w) {
                            break ended;
                        }
                    };
                    assert!(ended.is_ok(), "size {size}, most {most}: {ended:?}");
                    assert!(w.shut, "size {size}, most {most}: not shut down");
                    assert!(
                        w.taken == stream,
                        "size {size}, most {most}: {} of {size} bytes arrived",
                        w.taken.len()
                    );
                    assert_eq!(d.copied, size as u64);
                }
            }
        }
    }

    /// Drives one direction from `steps` to the end: how it ended, its writes and whether
    /// the writer was shut down, and its buffer's size at the end.
    fn one_direction(
        steps: Vec<Result<Vec<u8>, io::ErrorKind>>,
    ) -> (io::Result<()>, Writes, usize) {
        let mut r = Script(steps.into());
        let mut w = Writes::default();
        let mut d = Direction::new();
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(ended) = d.poll(&mut cx, &mut r, &mut w) else {
            panic!("a scripted reader is never pending");
        };
        (ended, w, d.buf.len())
    }

    #[test]
    fn a_direction_of_small_messages_keeps_its_first_buffer_and_a_large_one_leaves_whole() {
        let small: Vec<_> = (0..50).map(|i| Ok(vec![i as u8; 300])).collect();
        let (ended, w, size) = one_direction(small);
        assert!(ended.is_ok() && w.1, "ended {ended:?}, shut down {}", w.1);
        assert_eq!(w.0.len(), 50);
        assert_eq!(size, FIRST_BUFFER, "small messages grew the buffer");

        // A message larger than the first buffer, in one piece from the reader, after small
        // ones: the read that fills the first buffer grows it and reads on, one write.
        let big: Vec<u8> = (0..COPY_BUFFER).map(|i| i as u8).collect();
        let (ended, w, size) = one_direction(vec![Ok(b"ping".to_vec()), Ok(big.clone())]);
        assert!(ended.is_ok() && w.1);
        assert_eq!(
            w.0,
            [b"ping".to_vec(), big],
            "the large message in one write"
        );
        assert_eq!(size, COPY_BUFFER);

        // Exactly the first buffer's size, then the end (met by the read on): written, then
        // the writer shut down.
        let edge = vec![9u8; FIRST_BUFFER];
        let (ended, w, _) = one_direction(vec![Ok(edge.clone())]);
        assert!(ended.is_ok() && w.1);
        assert_eq!(w.0, [edge]);
    }

    #[test]
    fn an_error_met_after_the_buffer_grew_comes_after_the_bytes_read_before_it() {
        let first = vec![1u8; FIRST_BUFFER];
        let (ended, w, _) =
            one_direction(vec![Ok(first.clone()), Err(io::ErrorKind::ConnectionReset)]);
        assert_eq!(
            ended.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset)
        );
        assert_eq!(w.0, [first], "the bytes read before the error were written");
        assert!(!w.1, "an error is not an end: the writer is not shut down");

        // Interrupted is retried, as by every read.
        let (ended, w, _) = one_direction(vec![
            Ok(vec![2u8; FIRST_BUFFER]),
            Err(io::ErrorKind::Interrupted),
            Ok(vec![3u8; 10]),
        ]);
        assert!(ended.is_ok() && w.1);
        assert_eq!(w.0.len(), 1);
        assert_eq!(w.0[0].len(), FIRST_BUFFER + 10);
    }

    /// Relays between `a` and `b`, and sends a generation that no longer allows them once
    /// the relay runs: how the relay ended (a failure after 10 s).
    async fn relay_then_revoke<A, B>(a: &mut A, b: &mut B) -> Ended
    where
        A: AsyncRead + AsyncWrite + Unpin,
        B: AsyncRead + AsyncWrite + Unpin,
    {
        let (current_tx, current) = watch::channel(empty_generation());
        let allowed = std::sync::atomic::AtomicBool::new(true);
        let revoke = async {
            tokio::task::yield_now().await;
            allowed.store(false, Ordering::Relaxed);
            current_tx.send(empty_generation()).unwrap();
        };
        // tokio's timeout polls its timer outside the budget: it fires even when the relay
        // starves its own lanes.
        let (ended, ()) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(
                relay(a, b, current, |_| allowed.load(Ordering::Relaxed)),
                revoke
            )
        })
        .await
        .expect("the revocation was not seen");
        ended
    }

    #[tokio::test]
    async fn a_new_generation_that_no_longer_allows_ends_the_relay() {
        let (mut a, _a_peer) = tokio::io::duplex(64);
        let (mut b, _b_peer) = tokio::io::duplex(64);
        assert!(matches!(
            relay_then_revoke(&mut a, &mut b).await,
            Ended::Revoked
        ));
    }

    #[tokio::test]
    async fn a_revocation_ends_a_relay_whose_copy_spends_the_whole_budget() {
        // `a` always has bytes and `b` always takes them, both co-operative: the a→b lane
        // spends tokio's whole budget at every poll of the task, before the policy's lane is
        // polled. The revocation must still end the relay.
        let mut a = tokio::io::join(tokio::io::repeat(1), tokio::io::sink());
        let mut b = tokio::io::join(tokio::io::empty(), tokio::io::sink());
        assert!(matches!(
            relay_then_revoke(&mut a, &mut b).await,
            Ended::Revoked
        ));
    }
}
