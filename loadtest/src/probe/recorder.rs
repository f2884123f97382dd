//! The recording upstream: raw TCP, keeps every byte each connection brings. Once the bytes
//! read so far hold a request as a permissive server would read it ([`lenient_end`]), or after
//! [`IDLE`] without a byte, it answers `200` with its mark and `Connection: close`, reads on
//! until the proxy closes (or [`IDLE`] again), and closes.

use super::wire::lenient_end;
pub use super::wire::MARK;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// How long a connection may stay silent before the recorder answers or closes it.
pub const IDLE: Duration = Duration::from_millis(700);

/// How long [`Recorder::since`] waits for a first connection before it reports none: a proxy
/// may answer the client before it connects upstream (and forward afterwards).
const SETTLE: Duration = Duration::from_millis(100);

const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Probe-Upstream: 1\r\nConnection: close\r\n\r\nok";

#[derive(Debug, Default)]
struct Conn {
    bytes: Vec<u8>,
    open: bool,
}

#[derive(Default)]
struct Inner {
    conns: Mutex<Vec<Conn>>,
    changed: Notify,
}

/// A running recording upstream.
#[derive(Clone)]
pub struct Recorder {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Recorder {
    /// Listens on `addr` (port 0 for any).
    pub async fn start(addr: SocketAddr) -> std::io::Result<Recorder> {
        let listener = TcpListener::bind(addr).await?;
        let rec = Recorder {
            addr: listener.local_addr()?,
            inner: Arc::default(),
        };
        let me = rec.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let index = {
                    let mut conns = me.conns();
                    conns.push(Conn {
                        bytes: Vec::new(),
                        open: true,
                    });
                    conns.len() - 1
                };
                me.inner.changed.notify_waiters();
                tokio::spawn(me.clone().serve(s, index));
            }
        });
        Ok(rec)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.inner.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections so far: what [`Self::since`] counts from.
    pub fn mark(&self) -> usize {
        self.conns().len()
    }

    /// The bytes of every connection accepted since `mark`, once all of them are closed (or
    /// `within` has passed: then as they are). None accepted yet: it waits up to
    /// min(`within`, [`SETTLE`]) from the call for a late one before reporting none.
    pub async fn since(&self, mark: usize, within: Duration) -> Vec<Vec<u8>> {
        let start = tokio::time::Instant::now();
        let deadline = start + within;
        let settle = start + within.min(SETTLE);
        loop {
            let changed = self.inner.changed.notified();
            let until = {
                let conns = self.conns();
                let rest = conns.get(mark..).unwrap_or_default();
                let now = tokio::time::Instant::now();
                let done = match rest.is_empty() {
                    true => now >= settle,
                    false => rest.iter().all(|c| !c.open),
                };
                if done || now >= deadline {
                    return rest.iter().map(|c| c.bytes.clone()).collect();
                }
                if rest.is_empty() {
                    settle
                } else {
                    deadline
                }
            };
            let _ = tokio::time::timeout_at(until, changed).await;
        }
    }

    async fn serve(self, mut s: TcpStream, index: usize) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut answered = false;
        loop {
            let read = tokio::time::timeout(IDLE, s.read(&mut buf)).await;
            let n = match read {
                Ok(Ok(n)) if n > 0 => n,
                Ok(_) => break,
                Err(_) if answered => break,
                Err(_) => {
                    // Silent without a complete request: answer what came.
                    answered = true;
                    if answer(&mut s).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            let complete = {
                let mut conns = self.conns();
                let bytes = &mut conns[index].bytes;
                bytes.extend_from_slice(&buf[..n]);
                lenient_end(bytes).is_some()
            };
            self.inner.changed.notify_waiters();
            if complete && !answered {
                answered = true;
                if answer(&mut s).await.is_err() {
                    break;
                }
            }
        }
        self.conns()[index].open = false;
        self.inner.changed.notify_waiters();
    }
}

/// Writes the answer and closes the write side (the proxy sees the end at once).
async fn answer(s: &mut TcpStream) -> std::io::Result<()> {
    s.write_all(ANSWER).await?;
    s.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy that answers before it connects upstream: the late connection is this call's,
    /// not the next one's.
    #[tokio::test]
    async fn a_connection_opened_just_after_the_call_is_reported() {
        let rec = Recorder::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mark = rec.mark();
        let addr = rec.addr();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                .await
                .unwrap();
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        });
        let got = rec.since(mark, Duration::from_secs(2)).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with(b"GET / "), "{got:?}");
    }
}
