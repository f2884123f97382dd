//! Copies bytes both ways until either side ends, and stops at once when a new generation's
//! policy no longer allows the connection.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use std::sync::Arc;

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
