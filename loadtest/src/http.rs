//! Requests, and the HTTP/1.1 client of ordinary traffic on hyper
//! (`hyper::client::conn::http1`): one request at a time on a keep-alive
//! connection, reading the whole response. A request the `http` types refuse
//! (an attack corpus item with bytes no valid URI or header may carry) is
//! sent by [`crate::malformed`] instead, byte for byte.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST};
use http::{HeaderMap, Method, Uri, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use crate::malformed::{self, RawClient};
use crate::target::Conn;

const MAX_BODY: usize = 64 * 1024 * 1024;

pub use crate::message::{Request, Response};

impl Request {
    /// Built once per run: through hyper when the `http` types hold the
    /// request, else the raw bytes. Host and Content-Length are ours.
    pub fn prepare(&self, host: &str) -> Prepared {
        match self.template(host) {
            Some(template) => Prepared::Hyper(Box::new(template)),
            None => Prepared::Raw {
                wire: malformed::encode(self, host),
                head: self.method == "HEAD",
            },
        }
    }

    fn template(&self, host: &str) -> Option<Template> {
        let method = Method::from_bytes(self.method.as_bytes()).ok()?;
        let uri: Uri = self.target.parse().ok()?;
        if uri.scheme().is_some() || uri.path_and_query().map(|p| p.as_str()) != Some(&self.target)
        {
            return None; // not origin-form as given
        }
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).ok()?);
        for (name, value) in &self.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_bytes(value.as_bytes()).ok()?,
            );
        }
        if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        Some(Template {
            method,
            uri,
            headers,
            body: Bytes::from(self.body.clone()),
        })
    }
}

/// A request as the `http` types hold it; each send is a cheap copy.
#[derive(Debug, Clone)]
pub struct Template {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Template {
    fn request(&self) -> http::Request<Full<Bytes>> {
        let mut request = http::Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub enum Prepared {
    Hyper(Box<Template>),
    /// Raw bytes for [`crate::malformed`]; `head`: a HEAD request (no response body).
    Raw {
        wire: Vec<u8>,
        head: bool,
    },
}

/// A keep-alive connection: hyper's, or the raw sender's for a malformed request.
pub enum Client {
    Hyper(HyperClient),
    Raw(RawClient),
}

impl Client {
    /// A new connection for `request`'s kind.
    pub async fn connect(conn: Conn, request: &Prepared) -> io::Result<Self> {
        Ok(match request {
            Prepared::Hyper(_) => Self::Hyper(HyperClient::handshake(conn).await?),
            Prepared::Raw { .. } => Self::Raw(RawClient::new(conn)),
        })
    }

    /// True if the connection can carry `request` now: the same kind, and
    /// the server neither closed it nor sent anything since the last response.
    pub async fn is_idle_for(&mut self, request: &Prepared) -> bool {
        match (self, request) {
            (Self::Hyper(c), Prepared::Hyper(_)) => c.is_idle().await,
            (Self::Raw(c), Prepared::Raw { .. }) => c.is_idle().await,
            _ => false,
        }
    }

    /// Sends one request and reads its whole response.
    pub async fn exchange(&mut self, request: &Prepared) -> io::Result<Response> {
        match (self, request) {
            (Self::Hyper(c), Prepared::Hyper(t)) => c.exchange(t).await,
            (Self::Raw(c), Prepared::Raw { wire, head }) => c.exchange(wire, *head).await,
            _ => Err(io::Error::other("connection of the other kind")),
        }
    }
}

type Connection = http1::Connection<TokioIo<Conn>, Full<Bytes>>;

/// hyper's HTTP/1.1 client connection, driven in the caller's task while a
/// request is on it (no task hop per request); dropped, it closes.
pub struct HyperClient {
    sender: http1::SendRequest<Full<Bytes>>,
    connection: Pin<Box<Connection>>,
    /// The connection future ended (the server closed it, or an error).
    ended: bool,
}

/// hyper's errors as I/O errors, so they are counted by kind
/// (`stats::ErrorKind::of`): a connection the server closed is `Closed`.
fn io_error(e: hyper::Error) -> io::Error {
    let kind = if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        io::ErrorKind::UnexpectedEof
    } else if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else if e.is_parse() || e.is_parse_status() {
        io::ErrorKind::InvalidData
    } else {
        // An I/O failure underneath keeps its own kind.
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<io::Error>() {
                return io::Error::new(io.kind(), e.to_string());
            }
            source = s.source();
        }
        io::ErrorKind::Other
    };
    io::Error::new(kind, e.to_string())
}

impl HyperClient {
    pub async fn handshake(conn: Conn) -> io::Result<Self> {
        let (sender, connection) = http1::handshake(TokioIo::new(conn))
            .await
            .map_err(io_error)?;
        Ok(Self {
            sender,
            connection: Box::pin(connection),
            ended: false,
        })
    }

    async fn is_idle(&mut self) -> bool {
        // Poll the connection once: a close or stray bytes since the last response end it.
        if !self.ended
            && tokio::time::timeout(Duration::ZERO, self.connection.as_mut())
                .await
                .is_ok()
        {
            self.ended = true;
        }
        !self.ended && !self.sender.is_closed() && self.sender.is_ready()
    }

    async fn exchange(&mut self, template: &Template) -> io::Result<Response> {
        if self.ended {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let Self {
            sender,
            connection,
            ended,
        } = self;
        let exchange = Self::round_trip(sender, template);
        tokio::pin!(exchange);
        tokio::select! {
            biased;
            result = &mut exchange => return result,
            done = connection.as_mut() => {
                *ended = true;
                if let Err(e) = done {
                    return Err(io_error(e));
                }
            }
        }
        // The connection ended cleanly (e.g. `Connection: close` after the response):
        // what it delivered is buffered; a request it never answered fails as closed.
        exchange.await
    }

    async fn round_trip(
        sender: &mut http1::SendRequest<Full<Bytes>>,
        template: &Template,
    ) -> io::Result<Response> {
        let response = sender
            .send_request(template.request())
            .await
            .map_err(io_error)?;
        let status = response.status().as_u16();
        let connection = response
            .headers()
            .get(CONNECTION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let close = connection.contains("close")
            || (response.version() == Version::HTTP_10 && !connection.contains("keep-alive"));
        Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(e) => io_error(*e),
                Err(e) => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            })?;
        Ok(Response { status, close })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn well_formed_requests_go_through_hyper_odd_ones_raw() {
        let mut r = Request::get("/a?b=1");
        r.method = "POST".into();
        r.headers
            .push(("Content-Type".into(), "application/json".into()));
        r.body = b"{}".to_vec();
        let Prepared::Hyper(t) = r.prepare("h:1") else {
            panic!("well-formed request not for hyper");
        };
        let req = t.request();
        assert_eq!(req.uri(), "/a?b=1");
        assert_eq!(req.headers()[HOST], "h:1");
        assert_eq!(req.headers()[CONTENT_LENGTH], "2");
        // A payload with bytes no URI may hold is sent as it is.
        let odd = Request::get("/search?q=<script>\"é\"");
        let Prepared::Raw { wire, head } = odd.prepare("h") else {
            panic!("odd request not raw");
        };
        assert!(!head);
        assert!(wire.starts_with("GET /search?q=<script>\"é\" HTTP/1.1\r\n".as_bytes()));
    }

    /// Scripted answers on a duplex pipe: the client reads whole bodies and
    /// tells a connection the server will close.
    #[tokio::test]
    async fn reads_bodies_and_notices_close() {
        let (client_side, mut server_side) = tokio::io::duplex(1 << 16);
        let get = Request::get("/").prepare("h");
        let mut c = Client::connect(Box::new(client_side), &get).await.unwrap();
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            for answer in [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"[..],
                b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            ] {
                let _ = server_side.read(&mut buf).await.unwrap();
                server_side.write_all(answer).await.unwrap();
            }
        });
        let expect = [(200, false), (429, false), (403, true)];
        for (status, close) in expect {
            assert!(c.is_idle_for(&get).await);
            let r = tokio::time::timeout(std::time::Duration::from_secs(5), c.exchange(&get))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((r.status, r.close), (status, close));
        }
        server.await.unwrap();
    }
}
