//! The raw HTTP/1.1 sender, only for requests the `http` types refuse to
//! hold (attack corpus items with bytes no valid URI or header may carry):
//! they must reach the target byte for byte, so they cannot go through hyper.
//! Ordinary traffic goes through [`crate::http::Client`] (hyper). One request
//! at a time on a keep-alive connection, reading the whole response
//! (Content-Length, chunked, or until close).

use std::io;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::message::{Request, Response};
use crate::target::Conn;

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// The bytes on the wire of `request` for `host`. Host and Content-Length are ours.
pub fn encode(request: &Request, host: &str) -> Vec<u8> {
    let mut out = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\n",
        request.method, request.target
    )
    .into_bytes();
    for (name, value) in &request.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !request.body.is_empty() || matches!(request.method.as_str(), "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", request.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&request.body);
    out
}

/// A connection with its read buffer.
pub struct RawClient {
    io: BufReader<Conn>,
}

fn protocol(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl RawClient {
    pub fn new(conn: Conn) -> Self {
        Self {
            io: BufReader::new(conn),
        }
    }

    /// True if the server sent nothing (no stray bytes, no EOF) since the
    /// last response, so the connection can carry another request. Catches
    /// servers that answer an idle keep-alive connection with 408 and close.
    pub async fn is_idle(&mut self) -> bool {
        if !self.io.buffer().is_empty() {
            return false;
        }
        // Timeout polls the read once first: Elapsed means "nothing there".
        tokio::time::timeout(std::time::Duration::ZERO, self.io.fill_buf())
            .await
            .is_err()
    }

    /// Sends one encoded request and reads its response.
    pub async fn exchange(&mut self, wire: &[u8], head_request: bool) -> io::Result<Response> {
        self.io.get_mut().write_all(wire).await?;
        self.io.get_mut().flush().await?;
        loop {
            let (status, len, chunked, close) = self.read_head().await?;
            if (100..200).contains(&status) {
                continue; // interim response; the real one follows
            }
            let no_body = head_request || status == 204 || status == 304;
            let mut close = close;
            if !no_body {
                if chunked {
                    self.skip_chunked().await?;
                } else if let Some(len) = len {
                    self.skip(len).await?;
                } else {
                    // Delimited by close.
                    let mut sink = tokio::io::sink();
                    tokio::io::copy(&mut (&mut self.io).take(MAX_BODY), &mut sink).await?;
                    close = true;
                }
            }
            return Ok(Response { status, close });
        }
    }

    async fn line(&mut self, budget: &mut usize) -> io::Result<String> {
        let mut buf = Vec::new();
        let n = (&mut self.io)
            .take(*budget as u64)
            .read_until(b'\n', &mut buf)
            .await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        *budget = budget.saturating_sub(n);
        if !buf.ends_with(b"\n") {
            return Err(protocol("response head too large"));
        }
        Ok(String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string())
    }

    async fn read_head(&mut self) -> io::Result<(u16, Option<u64>, bool, bool)> {
        let mut budget = MAX_HEAD;
        let status_line = self.line(&mut budget).await?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(protocol("not an HTTP/1.x response"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| protocol("bad status"))?;
        let mut close = version == "HTTP/1.0";
        let (mut len, mut chunked) = (None, false);
        loop {
            let line = self.line(&mut budget).await?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                len = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| protocol("bad Content-Length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                let v = value.to_ascii_lowercase();
                close = v.contains("close") || (close && !v.contains("keep-alive"));
            }
        }
        Ok((status, len, chunked, close))
    }

    async fn skip(&mut self, len: u64) -> io::Result<()> {
        if len > MAX_BODY {
            return Err(protocol("response body too large"));
        }
        let copied = tokio::io::copy(&mut (&mut self.io).take(len), &mut tokio::io::sink()).await?;
        if copied < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "body cut short",
            ));
        }
        Ok(())
    }

    async fn skip_chunked(&mut self) -> io::Result<()> {
        let mut total = 0u64;
        loop {
            let mut budget = 1024;
            let size_line = self.line(&mut budget).await?;
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(hex, 16).map_err(|_| protocol("bad chunk size"))?;
            total = total.saturating_add(size);
            if total > MAX_BODY {
                return Err(protocol("response body too large"));
            }
            if size == 0 {
                // Trailers, up to the empty line.
                let mut budget = MAX_HEAD;
                while !self.line(&mut budget).await?.is_empty() {}
                return Ok(());
            }
            self.skip(size + 2).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_host_and_length() {
        let mut r = Request::get("/a?b=1");
        r.method = "POST".into();
        r.headers
            .push(("Content-Type".into(), "application/json".into()));
        r.body = b"{}".to_vec();
        let wire = String::from_utf8(encode(&r, "h:1")).unwrap();
        assert_eq!(
            wire,
            "POST /a?b=1 HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    #[tokio::test]
    async fn reads_length_chunked_and_close_delimited_bodies() {
        let (client_side, mut server_side) = tokio::io::duplex(1 << 16);
        let mut c = RawClient::new(Box::new(client_side));
        server_side
            .write_all(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
                  HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX: y\r\n\r\n\
                  HTTP/1.0 403 Forbidden\r\n\r\nbye",
            )
            .await
            .unwrap();
        assert_eq!(
            c.exchange(b"", false).await.unwrap(),
            Response {
                status: 200,
                close: false
            }
        );
        assert_eq!(
            c.exchange(b"", false).await.unwrap(),
            Response {
                status: 429,
                close: false
            }
        );
        drop(server_side);
        assert_eq!(
            c.exchange(b"", false).await.unwrap(),
            Response {
                status: 403,
                close: true
            }
        );
        assert!(c.exchange(b"", false).await.is_err());
    }

    #[tokio::test]
    async fn stale_keepalive_connection_is_not_idle() {
        let (client_side, mut server_side) = tokio::io::duplex(1024);
        let mut c = RawClient::new(Box::new(client_side));
        assert!(c.is_idle().await);
        server_side
            .write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            .await
            .unwrap();
        assert!(!c.is_idle().await);
        let (client_side, server_side) = tokio::io::duplex(1024);
        let mut c = RawClient::new(Box::new(client_side));
        drop(server_side);
        assert!(!c.is_idle().await, "EOF not noticed");
    }
}
