//! Hands a chunked HTTP/1.1 request body that was read whole before forwarding (so the WAF saw
//! all of it) back to Pingora.
//!
//! Pingora forwards a request body only by reading it from the downstream session; a body
//! already read in `request_filter` is forwarded only through Pingora's retry buffer, which
//! holds at most 64 KiB counted from when it was switched on and can't be reset. A chunked body
//! has no length to plan that window by, so one that ends past 64 KiB can't go that way.
//! Instead the session is rebuilt: a new Pingora h1 session parses the same request with
//! `Content-Length` (no `Transfer-Encoding`) from a stream ([`Replay`]) that yields that head
//! and the buffered body before the connection's own bytes. Pingora then reads and forwards
//! the body as for any Content-Length request.
//!
//! Keep-alive is off for a rebuilt request: bytes the old session read past the body (a
//! pipelined next request) are not reachable, so the connection closes after the response.

use bytes::{Buf, Bytes};
use pingora_core::protocols::http::v1::server::HttpSession as SessionV1;
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::Stream;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// The request head of `req` with `Content-Length: body_len` in place of its framing headers.
fn content_length_head(req: &RequestHeader, body_len: usize) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(req.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(req.uri.to_string().as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers.iter() {
        if name == http::header::TRANSFER_ENCODING || name == http::header::CONTENT_LENGTH {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(format!("content-length: {body_len}\r\n\r\n").as_bytes());
    head
}

/// A new h1 session over `stream` with its request head parsed.
async fn parsed(stream: Stream) -> Option<SessionV1> {
    let mut s = SessionV1::new(stream);
    matches!(s.read_request().await, Ok(Some(_))).then_some(s)
}

/// Replaces the downstream h1 session by one that reads `body` (the whole request body, already
/// inspected) as a Content-Length body. On `Err` the request can't be answered on this
/// connection (it is closed when the request ends); the old session is kept when the new head
/// does not parse.
pub async fn rebuild(session: &mut Session, body: Bytes) -> Result<()> {
    let head = Bytes::from(content_length_head(session.req_header(), body.len()));
    // First parse the head alone: it stands in for the old session while the stream moves, so
    // the request header stays readable whatever happens next.
    let Some(stand_in) = parsed(Box::new(Replay::new(head.clone(), Bytes::new(), None))).await
    else {
        return Error::e_explain(
            ErrorType::InternalError,
            "rebuilt request head did not parse",
        );
    };
    let old = std::mem::replace(
        &mut *session.downstream_session,
        ServerSession::H1(stand_in),
    );
    let old = match old {
        ServerSession::H1(h1) => h1,
        other => {
            *session.downstream_session = other;
            return Error::e_explain(ErrorType::InternalError, "only h1 sessions are rebuilt");
        }
    };
    let timeouts = (
        old.get_read_timeout(),
        old.get_write_timeout(),
        old.get_total_drain_timeout(),
    );
    let stream = old.into_inner();
    let Some(mut new) = parsed(Box::new(Replay::new(head, body, Some(stream)))).await else {
        return Error::e_explain(ErrorType::InternalError, "rebuilt request did not parse");
    };
    new.set_read_timeout(timeouts.0);
    new.set_write_timeout(timeouts.1);
    new.set_total_drain_timeout(timeouts.2);
    *session.downstream_session = ServerSession::H1(new);
    session.set_keepalive(None);
    Ok(())
}

/// Yields `head`, then `body`, then the connection's own bytes; everything else goes to the
/// connection. Without a connection (the stand-in) reads end after the replayed bytes and
/// writes fail.
#[derive(Debug)]
pub struct Replay {
    head: Bytes,
    body: Bytes,
    inner: Stream,
}

impl Replay {
    fn new(head: Bytes, body: Bytes, inner: Option<Stream>) -> Self {
        Replay {
            head,
            body,
            inner: inner.unwrap_or_else(|| Box::new(Detached)),
        }
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        for part in [&mut this.head, &mut this.body] {
            if !part.is_empty() {
                let n = part.len().min(buf.remaining());
                buf.put_slice(&part[..n]);
                part.advance(n);
                return Poll::Ready(Ok(()));
            }
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

rampart_protect::delegate_async_write!(Replay);
rampart_protect::delegate_stream_traits!(Replay);

/// A stream with nothing behind it: reads end, writes fail.
#[derive(Debug)]
struct Detached;

impl AsyncRead for Detached {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Detached {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[async_trait::async_trait]
impl pingora_core::protocols::Shutdown for Detached {
    async fn shutdown(&mut self) {}
}

impl pingora_core::protocols::UniqueID for Detached {
    fn id(&self) -> pingora_core::protocols::UniqueIDType {
        0
    }
}

impl pingora_core::protocols::Ssl for Detached {}

impl pingora_core::protocols::GetTimingDigest for Detached {
    fn get_timing_digest(&self) -> Vec<Option<pingora_core::protocols::TimingDigest>> {
        Vec::new()
    }
}

impl pingora_core::protocols::GetProxyDigest for Detached {
    fn get_proxy_digest(
        &self,
    ) -> Option<std::sync::Arc<pingora_core::protocols::raw_connect::ProxyDigest>> {
        None
    }
}

impl pingora_core::protocols::GetSocketDigest for Detached {
    fn get_socket_digest(&self) -> Option<std::sync::Arc<pingora_core::protocols::SocketDigest>> {
        None
    }
}

#[async_trait::async_trait]
impl pingora_core::protocols::Peek for Detached {}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn head_swaps_chunked_framing_for_a_length() {
        let mut req = RequestHeader::build("POST", b"/up?x=1", None).unwrap();
        req.insert_header("host", "app.test").unwrap();
        req.insert_header("transfer-encoding", "chunked").unwrap();
        req.insert_header("x-a", "b").unwrap();
        let head = String::from_utf8(content_length_head(&req, 70_000)).unwrap();
        assert!(head.starts_with("POST /up?x=1 HTTP/1.1\r\n"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(head.contains("host: app.test\r\n"), "{head}");
        assert!(head.ends_with("content-length: 70000\r\n\r\n"), "{head}");
    }

    #[tokio::test]
    async fn replay_yields_head_body_then_ends_without_a_connection() {
        let mut r = Replay::new(
            Bytes::from_static(b"HEAD"),
            Bytes::from_static(b"body"),
            None,
        );
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"HEADbody");
    }

    #[tokio::test]
    async fn rebuilt_session_reads_the_body_by_its_length() {
        let mut req = RequestHeader::build("POST", b"/up", None).unwrap();
        req.insert_header("host", "app.test").unwrap();
        req.insert_header("transfer-encoding", "chunked").unwrap();
        let body = Bytes::from(vec![b'z'; 100_000]);
        let head = Bytes::from(content_length_head(&req, body.len()));
        let mut s = parsed(Box::new(Replay::new(head, body.clone(), None)))
            .await
            .unwrap();
        assert!(s.get_header("transfer-encoding").is_none());
        let mut got = Vec::new();
        while let Some(chunk) = s.read_body_bytes().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, body);
        assert!(s.is_body_done());
    }
}
