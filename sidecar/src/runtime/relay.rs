//! Copies bytes both ways until either side ends, and stops at once when a new generation's
//! policy no longer allows the connection; and the accept loop every listener runs.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use std::net::SocketAddr;
use std::sync::Arc;
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
    loop {
        tokio::select! {
            r = &mut copy => return match r {
                Ok((ab, ba)) => Ended::Done(ab, ba),
                Err(e) => Ended::Failed(e),
            },
            changed = current.changed() => {
                if changed.is_err() {
                    // The sender is gone (shutting down): finish the copy.
                    return match (&mut copy).await {
                        Ok((ab, ba)) => Ended::Done(ab, ba),
                        Err(e) => Ended::Failed(e),
                    };
                }
                let g = current.borrow_and_update().clone();
                if !still_allowed(&g) {
                    return Ended::Revoked;
                }
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
