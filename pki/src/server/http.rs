//! The response reader of the CA *client* (`client::CaClient`), kept only
//! until that client moves onto hyper in `identity/` (tls-identity). The
//! service itself speaks HTTP through hyper (`handlers.rs`).

use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request too large")]
    TooLarge,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a whole response (until close): returns status and body.
pub async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
) -> Result<(u16, Vec<u8>), HttpError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // Peers that close without close_notify: the body length check
            // below still catches truncation.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > limit {
            return Err(HttpError::TooLarge);
        }
    }
    let head_end = find(&buf, b"\r\n\r\n").ok_or(HttpError::Malformed("no end of headers"))?;
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| HttpError::Malformed("non-UTF-8 head"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::Malformed("bad status line"))?;
    let body = buf[head_end + 4..].to_vec();
    let declared = head.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    if declared.is_some_and(|d| d != body.len()) {
        return Err(HttpError::Malformed("truncated body"));
    }
    Ok((status, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
