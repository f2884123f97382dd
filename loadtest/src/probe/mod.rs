//! The differential request-smuggling probe: raw request bytes sent to a proxy in front of a
//! recording upstream ([`recorder::Recorder`]) that keeps every byte it receives; each case is
//! judged by what reached the upstream ([`wire::strict_requests`]).

pub mod cases;
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
    /// The proxy closed the connection.
    pub closed: bool,
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
            out.closed = eof;
            out.timed_out = timed_out && out.answers.len() < requests && !refused;
            return out;
        }
    }
}

pub use cases::{cases, Case, Expect};
use wire::{Forwarded, Strict};

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Answered with this status (≥ 400) and nothing reached the upstream.
    Refused(u16),
    /// This many requests reached the upstream, each one unambiguous, and each was answered;
    /// of how many the client sent (fewer when the proxy closed the connection after the
    /// first: a client that pipelines retries what is left unanswered, RFC 9112 §9.3.2).
    Forwarded(usize, usize),
    /// A head and part of a body reached the upstream, which never saw a complete request: the
    /// proxy cut the connection to it on a fault past the first chunk (a streamed body), or the
    /// client sent less than it declared; the client got this answer.
    Truncated(Option<u16>),
    /// Nothing came back within the wait and nothing was forwarded.
    NoAnswer,
    /// Closed without an answer and nothing was forwarded.
    Closed,
    /// Something ambiguous reached the upstream, or the verdict contradicts the RFC.
    Defect(String),
}

impl Verdict {
    pub fn is_defect(&self) -> bool {
        matches!(self, Verdict::Defect(_))
    }

    /// A short form for tables.
    pub fn short(&self) -> String {
        match self {
            Verdict::Refused(s) => s.to_string(),
            Verdict::Forwarded(1, 1) => "fwd".into(),
            Verdict::Forwarded(n, m) if n == m => format!("fwd×{n}"),
            Verdict::Forwarded(n, m) => format!("fwd {n}/{m}, closed"),
            Verdict::Truncated(Some(s)) => format!("part→{s}"),
            Verdict::Truncated(None) => "part".into(),
            Verdict::NoAnswer => "no answer".into(),
            Verdict::Closed => "closed".into(),
            Verdict::Defect(why) => format!("**DEFECT**: {why}"),
        }
    }
}

/// What the proxy under test adds to every forwarded request (seen on a plain GET): each must
/// still be there, once, whatever the client sends.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub added: Vec<String>,
}

impl Baseline {
    /// Sends a plain GET for `path` through `target`; the header names the upstream got beyond
    /// Host.
    pub async fn learn(
        target: SocketAddr,
        rec: &recorder::Recorder,
        path: &str,
        wait: Duration,
    ) -> Baseline {
        let bytes = format!("GET {path} HTTP/1.1\r\nHost: probe.test\r\n\r\n");
        let mark = rec.mark();
        exchange(target, bytes.as_bytes(), 1, wait).await;
        let up = rec.since(mark, wait).await;
        let added = wire::strict_requests(&up.concat())
            .ok()
            .and_then(|r| r.into_iter().next())
            .map(|r| {
                let mut names: Vec<String> = r
                    .headers
                    .into_iter()
                    .map(|(n, _)| n)
                    .filter(|n| !matches!(n.as_str(), "host" | "connection"))
                    .collect();
                names.dedup();
                names
            })
            .unwrap_or_default();
        Baseline { added }
    }
}

/// One case's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exchange: Exchange,
    /// The bytes of each upstream connection the case opened.
    pub forwarded: Vec<Vec<u8>>,
    pub verdict: Verdict,
}

/// Runs `case` through the proxy at `target` whose upstream is `rec`.
pub async fn run_case(
    target: SocketAddr,
    rec: &recorder::Recorder,
    case: &Case,
    base: &Baseline,
    wait: Duration,
) -> Outcome {
    let mark = rec.mark();
    let exchange = exchange(target, &case.bytes, case.requests, wait).await;
    let forwarded: Vec<Vec<u8>> = rec
        .since(mark, wait)
        .await
        .into_iter()
        .filter(|b| !b.is_empty())
        .collect();
    let verdict = judge(case, &exchange, &forwarded, base);
    Outcome {
        exchange,
        forwarded,
        verdict,
    }
}

/// The request target a case sent (its first request line's second word).
fn sent_target(bytes: &[u8]) -> Option<&[u8]> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let line = bytes[start..].split(|&b| b == b'\n').next()?;
    line.split(|&b| b == b' ').filter(|w| !w.is_empty()).nth(1)
}

/// The verdict on what the client saw and the upstream received.
pub fn judge(case: &Case, seen: &Exchange, forwarded: &[Vec<u8>], base: &Baseline) -> Verdict {
    let first = seen.answers.first().map(|a| a.status);
    let mut requests: Vec<Forwarded> = Vec::new();
    let mut truncated = false;
    for conn in forwarded {
        match wire::strict_requests(conn) {
            Ok(mut reqs) => {
                if reqs.len() > 1 {
                    return Verdict::Defect(format!(
                        "{} requests in one upstream exchange",
                        reqs.len()
                    ));
                }
                requests.append(&mut reqs);
            }
            Err(Strict::Incomplete { complete, .. }) if complete >= 1 => {
                return Verdict::Defect(
                    "a complete request and the start of another in one upstream exchange".into(),
                );
            }
            Err(Strict::Incomplete { what, .. }) => {
                // The upstream got a partial request; acceptable only if the proxy then cut the
                // connection and refused (the upstream can never complete it), or the client
                // itself sent less than it declared (a streaming proxy forwards what came; the
                // recorder answers when it stays silent).
                if matches!(first, Some(s) if s < 400) && !case.partial {
                    return Verdict::Defect(format!(
                        "incomplete request forwarded ({what}) and answered {first:?}"
                    ));
                }
                truncated = true;
            }
            Err(Strict::Ambiguous(why)) => return Verdict::Defect(why),
        }
    }
    // A proxy splitting one request in two (on two upstream connections) is caught here, not
    // by the answer count: both answers may land in the one read that ends the exchange.
    if requests.len() > case.requests {
        return Verdict::Defect(format!(
            "{} requests forwarded, the client sent {}",
            requests.len(),
            case.requests
        ));
    }
    for (i, req) in requests.iter().enumerate() {
        if let Some(why) = request_problem(case, req, base, i == 0) {
            return Verdict::Defect(why);
        }
    }
    let from_upstream = seen.answers.iter().filter(|a| a.from_upstream).count();
    if requests.len() > from_upstream {
        return Verdict::Defect(format!(
            "{} requests forwarded, {from_upstream} upstream answers reached the client",
            requests.len()
        ));
    }
    // After a refusal nothing more may go up.
    let before_refusal = seen.answers.iter().take_while(|a| a.status < 400).count();
    if requests.len() > before_refusal {
        return Verdict::Defect("a request forwarded after a refused one".into());
    }
    if truncated {
        return match case.late || case.partial {
            true => Verdict::Truncated(first),
            false => Verdict::Defect(
                "head forwarded before a framing fault the head's first chunk shows".into(),
            ),
        };
    }
    if requests.is_empty() {
        let verdict = match first {
            Some(s) if s >= 400 => Verdict::Refused(s),
            Some(s) => return Verdict::Defect(format!("answered {s} without forwarding")),
            None if seen.timed_out => Verdict::NoAnswer,
            None => Verdict::Closed,
        };
        if case.expect == Expect::Accept {
            return Verdict::Defect(format!("a valid request refused ({})", verdict.short()));
        }
        return verdict;
    }
    if case.expect == Expect::Refuse {
        return Verdict::Defect("forwarded what RFC 9112 requires refusing".into());
    }
    if let (Some(want), Some(req)) = (&case.body, requests.first()) {
        if &req.body != want {
            return Verdict::Defect(format!(
                "body forwarded as {:?}",
                String::from_utf8_lossy(&req.body)
            ));
        }
    }
    if case.expect == Expect::Accept && requests.len() < case.requests && !seen.closed {
        return Verdict::Defect(format!(
            "{} of {} valid requests forwarded, the connection left open",
            requests.len(),
            case.requests
        ));
    }
    Verdict::Forwarded(requests.len(), case.requests)
}

/// What is wrong with one strictly parsed forwarded request, for this case.
fn request_problem(case: &Case, req: &Forwarded, base: &Baseline, first: bool) -> Option<String> {
    let hosts = req.count("host");
    if hosts != 1 {
        return Some(format!("{hosts} Host fields forwarded"));
    }
    for (name, _) in &req.headers {
        let dashed = name.replace('_', "-");
        let shadowed = matches!(dashed.as_str(), "transfer-encoding" | "content-length")
            || base.added.contains(&dashed);
        if dashed != *name && shadowed {
            return Some(format!(
                "{name} forwarded (read as {dashed} by some servers)"
            ));
        }
    }
    for value in req.all("connection") {
        let text = String::from_utf8_lossy(value).to_ascii_lowercase();
        for token in text.split(',').map(str::trim) {
            let framing = matches!(token, "transfer-encoding" | "content-length" | "host");
            if framing || base.added.iter().any(|a| a == token) {
                return Some(format!("Connection names {token}: the next hop drops it"));
            }
        }
    }
    for name in &base.added {
        let n = req.count(name);
        if n != 1 && name != "x-forwarded-for" || n == 0 {
            return Some(format!("{name} (the proxy's own) forwarded {n} times"));
        }
    }
    // The target as sent, or the path of an absolute-form target sent with Host = authority.
    // The target as sent (a fragment, not part of a target, RFC 9112 §3.2, may be dropped), or
    // the path of an absolute-form target sent on with Host naming the authority's host.
    if !first {
        return None;
    }
    let sent = sent_target(&case.bytes).map(String::from_utf8_lossy)?;
    let unfragmented = sent.split('#').next().unwrap_or_default();
    let host = req.one("host").map(String::from_utf8_lossy);
    let authority = sent
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default());
    if req.target != sent && req.target != unfragmented {
        let path = sent
            .split_once("://")
            .and_then(|(_, rest)| rest.find(['/', '?']).map(|i| &rest[i..]));
        let path = path.map(|p| p.split('#').next().unwrap_or_default());
        let same_host = match (&host, authority) {
            (Some(h), Some(a)) => host_part(h) == host_part(a),
            _ => false,
        };
        if !(path == Some(req.target.as_str()) && same_host) {
            return Some(format!(
                "target forwarded as {:?} (sent {sent:?})",
                req.target
            ));
        }
    } else if let Some(authority) = authority {
        if host.as_deref() != Some(authority) {
            return Some(format!(
                "absolute-form authority {authority:?} with Host {host:?}"
            ));
        }
    }
    None
}

/// The host of an authority, lowercased, without port or trailing dot.
fn host_part(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The outcomes of every case against each target, as Markdown: a summary table, then one table
/// per class (rows: cases; columns: targets).
pub fn markdown(cases: &[Case], runs: &[(String, Vec<Outcome>)]) -> String {
    let mut out = String::new();
    out.push_str("| | ");
    out.push_str(
        &runs
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
    );
    out.push_str(" |\n|---|");
    out.push_str(&"---|".repeat(runs.len()));
    out.push('\n');
    type Count = fn(&Verdict) -> bool;
    let rows: [(&str, Count); 6] = [
        ("refused, nothing forwarded", |v| {
            matches!(v, Verdict::Refused(_))
        }),
        ("forwarded, unambiguous", |v| {
            matches!(v, Verdict::Forwarded(..))
        }),
        ("head and part of the body forwarded", |v| {
            matches!(v, Verdict::Truncated(_))
        }),
        ("no answer within the wait", |v| {
            matches!(v, Verdict::NoAnswer)
        }),
        ("closed without an answer", |v| matches!(v, Verdict::Closed)),
        ("**defects**", Verdict::is_defect),
    ];
    for (label, count) in rows {
        out.push_str(&format!("| {label} |"));
        for (_, outcomes) in runs {
            let n = outcomes.iter().filter(|o| count(&o.verdict)).count();
            out.push_str(&format!(" {n} |"));
        }
        out.push('\n');
    }
    let mut class = "";
    for (i, case) in cases.iter().enumerate() {
        if case.class != class {
            class = case.class;
            out.push_str(&format!("\n#### {class}\n\n| case | RFC |"));
            for (name, _) in runs {
                out.push_str(&format!(" {name} |"));
            }
            out.push_str("\n|---|---|");
            out.push_str(&"---|".repeat(runs.len()));
            out.push('\n');
        }
        let rfc = match case.expect {
            Expect::Accept => "accept",
            Expect::Refuse => "refuse",
            Expect::Either => "either",
        };
        out.push_str(&format!("| {} | {rfc} |", case.name.replace('|', "\\|")));
        for (_, outcomes) in runs {
            let v = outcomes
                .get(i)
                .map(|o| o.verdict.short())
                .unwrap_or_default();
            out.push_str(&format!(" {} |", v.replace('|', "\\|")));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: probe.test\r\n\r\n";

    fn case(partial: bool) -> Case {
        Case {
            class: "test",
            name: "test".into(),
            bytes: GET.to_vec(),
            expect: Expect::Either,
            requests: 1,
            body: None,
            late: false,
            partial,
        }
    }

    fn upstream_answers(n: usize) -> Exchange {
        let answer = Answer {
            status: 200,
            from_upstream: true,
        };
        Exchange {
            answers: vec![answer; n],
            timed_out: false,
            closed: true,
        }
    }

    #[test]
    fn more_requests_forwarded_than_sent_is_a_defect() {
        let forwarded = [GET.to_vec(), GET.to_vec()];
        let verdict = judge(
            &case(false),
            &upstream_answers(2),
            &forwarded,
            &Baseline::default(),
        );
        assert!(verdict.is_defect(), "{verdict:?}");
    }

    #[test]
    fn a_complete_request_before_an_incomplete_one_is_a_defect() {
        let mut conn = GET.to_vec();
        conn.extend_from_slice(
            b"POST / HTTP/1.1\r\nHost: probe.test\r\nContent-Length: 5\r\n\r\nhe",
        );
        for partial in [true, false] {
            let verdict = judge(
                &case(partial),
                &upstream_answers(1),
                &[conn.clone()],
                &Baseline::default(),
            );
            assert!(verdict.is_defect(), "{verdict:?}");
        }
    }
}
