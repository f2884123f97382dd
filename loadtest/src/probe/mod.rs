//! The differential request-smuggling probe: raw request bytes sent to a proxy in front of a
//! recording upstream ([`recorder::Recorder`]) that keeps every byte it receives; each case is
//! judged by what reached the upstream ([`wire::strict_requests`]).

pub mod recorder;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::Answer;

/// What the client saw for one case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    /// The final answers, in order.
    pub answers: Vec<Answer>,
    /// Nothing more came within the wait, and the connection was not closed.
    pub timed_out: bool,
}

/// Sends `bytes` on a new connection to `target` and reads answers until the connection closes,
/// `requests` final answers came, an answer refused a request (status ≥ 400), or `wait` passed
/// without a byte.
pub async fn exchange(
    target: SocketAddr,
    bytes: &[u8],
    requests: usize,
    wait: Duration,
) -> Exchange {
    let mut out = Exchange::default();
    let Ok(Ok(mut s)) = tokio::time::timeout(wait, TcpStream::connect(target)).await else {
        out.timed_out = true;
        return out;
    };
    // The proxy may close before reading everything (a refusal): what it read is what counts.
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let (eof, timed_out) = match tokio::time::timeout(wait, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => (true, false),
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                (false, false)
            }
            Err(_) => (false, true),
        };
        let (answers, _) = wire::responses(&buf, eof);
        let refused = answers.iter().any(|a| a.status >= 400);
        if eof || timed_out || refused || answers.len() >= requests {
            out.answers = answers;
            out.timed_out = timed_out && out.answers.len() < requests && !refused;
            return out;
        }
    }
}
