//! HTTP/1 as the probe reads it: the strict reading of what a proxy forwarded (the judge), a
//! lenient one for the recording upstream to know when to answer, and the client's response
//! reader.

/// The header the recording upstream's answers carry, so the client tells them from a proxy's
/// own.
pub const MARK: &str = "x-probe-upstream";

/// One request as forwarded, read strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub method: String,
    pub target: String,
    pub version: String,
    /// Names lowercased, values as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body decoded from its framing (chunks joined).
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body (names lowercased).
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl Forwarded {
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn count(&self, name: &str) -> usize {
        self.all(name).count()
    }

    pub fn one<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.all(name).next()
    }
}

/// How forwarded bytes fail the strict reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strict {
    /// The bytes end inside a request (head or body): the upstream saw an incomplete request,
    /// after `complete` complete ones on the same connection.
    Incomplete { what: &'static str, complete: usize },
    /// Bytes no strict HTTP/1.1 parser takes, or that parsers read differently.
    Ambiguous(String),
}

/// An incomplete request, before [`strict_requests`] counts the complete ones ahead of it.
fn incomplete(what: &'static str) -> Strict {
    Strict::Incomplete { what, complete: 0 }
}

fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A field value's bytes: VCHAR, obs-text, SP and HTAB, not starting or ending with a blank.
fn field_value_ok(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
        && !v.first().is_some_and(|&b| b == b' ' || b == b'\t')
        && !v.last().is_some_and(|&b| b == b' ' || b == b'\t')
}

/// The next CRLF-ended line from `pos` (without the CRLF); an LF without CR is ambiguous.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, Strict> {
    let rest = &buf[*pos..];
    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if lf == 0 || rest[lf - 1] != b'\r' {
        return Err(Strict::Ambiguous("line ended by a bare LF".into()));
    }
    let l = &rest[..lf - 1];
    if l.contains(&b'\r') {
        return Err(Strict::Ambiguous("bare CR inside a line".into()));
    }
    *pos += lf + 1;
    Ok(Some(l))
}

/// Header or trailer fields up to the empty line, strictly.
fn fields(buf: &[u8], pos: &mut usize) -> Result<Vec<(String, Vec<u8>)>, Strict> {
    let mut out = Vec::new();
    loop {
        let Some(l) = line(buf, pos)? else {
            return Err(incomplete("head"));
        };
        if l.is_empty() {
            return Ok(out);
        }
        if l[0] == b' ' || l[0] == b'\t' {
            return Err(Strict::Ambiguous(
                "obs-fold (a line starting with a blank)".into(),
            ));
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            return Err(Strict::Ambiguous(format!(
                "field line without a colon: {:?}",
                String::from_utf8_lossy(l)
            )));
        };
        let name = &l[..colon];
        if name.is_empty() || !name.iter().all(|&b| tchar(b)) {
            return Err(Strict::Ambiguous(format!(
                "field name not a token: {:?}",
                String::from_utf8_lossy(name)
            )));
        }
        let value = l[colon + 1..].trim_ascii();
        if !field_value_ok(value) {
            return Err(Strict::Ambiguous(format!(
                "control byte in the value of {}",
                String::from_utf8_lossy(name)
            )));
        }
        out.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            value.to_vec(),
        ));
    }
}

/// Transfer codings a strict reader takes (the final one must be `chunked`, once).
const CODINGS: [&[u8]; 5] = [b"chunked", b"gzip", b"deflate", b"compress", b"x-gzip"];

/// Reads every request in `buf` strictly: request line `token SP target SP HTTP/1.x`, field
/// lines, exactly one framing (one Content-Length of digits, or Transfer-Encoding ending in
/// `chunked` with a well-formed chunked body), no trailing bytes.
pub fn strict_requests(buf: &[u8]) -> Result<Vec<Forwarded>, Strict> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        match strict_request(buf, &mut pos) {
            Ok(req) => out.push(req),
            Err(Strict::Incomplete { what, .. }) => {
                let complete = out.len();
                return Err(Strict::Incomplete { what, complete });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn strict_request(buf: &[u8], pos: &mut usize) -> Result<Forwarded, Strict> {
    let Some(start) = line(buf, pos)? else {
        return Err(incomplete("request line"));
    };
    let parts: Vec<&[u8]> = start.split(|&b| b == b' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err(Strict::Ambiguous(format!(
            "request line not three words: {:?}",
            String::from_utf8_lossy(start)
        )));
    };
    if method.is_empty() || !method.iter().all(|&b| tchar(b)) {
        return Err(Strict::Ambiguous("method not a token".into()));
    }
    if target.is_empty() || target.iter().any(|&b| b <= 0x20 || b == 0x7f) {
        return Err(Strict::Ambiguous(
            "request target empty or with a control byte".into(),
        ));
    }
    if *version != b"HTTP/1.1" && *version != b"HTTP/1.0" {
        return Err(Strict::Ambiguous(format!(
            "version {:?}",
            String::from_utf8_lossy(version)
        )));
    }
    let mut req = Forwarded {
        method: String::from_utf8_lossy(method).into(),
        target: String::from_utf8_lossy(target).into(),
        version: String::from_utf8_lossy(version).into(),
        headers: fields(buf, pos)?,
        body: Vec::new(),
        trailers: Vec::new(),
    };
    let tes: Vec<&[u8]> = req.all("transfer-encoding").collect();
    let cls: Vec<&[u8]> = req.all("content-length").collect();
    if tes.len() > 1 {
        return Err(Strict::Ambiguous("Transfer-Encoding twice".into()));
    }
    if cls.len() > 1 {
        return Err(Strict::Ambiguous("Content-Length twice".into()));
    }
    if let Some(te) = tes.first() {
        if !cls.is_empty() {
            return Err(Strict::Ambiguous(
                "Transfer-Encoding and Content-Length".into(),
            ));
        }
        if req.version == "HTTP/1.0" {
            return Err(Strict::Ambiguous("Transfer-Encoding in HTTP/1.0".into()));
        }
        // Codings are case-insensitive; empty list elements are ignored (RFC 9110 §5.6.1).
        let te = te.to_ascii_lowercase();
        let codings: Vec<&[u8]> = te
            .split(|&b| b == b',')
            .map(|c| c.trim_ascii())
            .filter(|c| !c.is_empty())
            .collect();
        let known = codings.iter().all(|c| CODINGS.contains(c));
        let chunked = codings.iter().filter(|c| **c == b"chunked").count();
        if !known || chunked != 1 || codings.last() != Some(&&b"chunked"[..]) {
            return Err(Strict::Ambiguous(format!(
                "Transfer-Encoding {:?}",
                String::from_utf8_lossy(&te)
            )));
        }
        let (body, trailers) = chunked_body(buf, pos)?;
        req.body = body;
        req.trailers = trailers;
    } else if let Some(cl) = cls.first() {
        if cl.is_empty() || !cl.iter().all(u8::is_ascii_digit) || cl.len() > 18 {
            return Err(Strict::Ambiguous(format!(
                "Content-Length {:?}",
                String::from_utf8_lossy(cl)
            )));
        }
        let n: usize = String::from_utf8_lossy(cl).parse().unwrap_or(usize::MAX);
        if buf.len() - *pos < n {
            return Err(incomplete("body"));
        }
        req.body = buf[*pos..*pos + n].to_vec();
        *pos += n;
    }
    Ok(req)
}

type Body = (Vec<u8>, Vec<(String, Vec<u8>)>);

fn chunked_body(buf: &[u8], pos: &mut usize) -> Result<Body, Strict> {
    let mut body = Vec::new();
    loop {
        let Some(l) = line(buf, pos)? else {
            return Err(incomplete("chunk line"));
        };
        let digits = l.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let ext = &l[digits..];
        let ext_ok = ext.is_empty()
            || (ext[0] == b';'
                && ext[1..].split(|&b| b == b';').all(|e| {
                    !e.is_empty() && e.iter().all(|&b| tchar(b) || b == b'=' || b == b'"')
                }));
        if digits == 0 || digits > 16 || !ext_ok {
            return Err(Strict::Ambiguous(format!(
                "chunk line {:?}",
                String::from_utf8_lossy(l)
            )));
        }
        let size = usize::from_str_radix(&String::from_utf8_lossy(&l[..digits]), 16)
            .map_err(|_| Strict::Ambiguous("chunk size overflows".into()))?;
        if size == 0 {
            let trailers = fields(buf, pos)?;
            for (name, _) in &trailers {
                if matches!(
                    name.as_str(),
                    "content-length" | "transfer-encoding" | "host"
                ) {
                    return Err(Strict::Ambiguous(format!("{name} in the trailers")));
                }
            }
            return Ok((body, trailers));
        }
        if buf.len() - *pos < size + 2 {
            return Err(incomplete("chunk data"));
        }
        body.extend_from_slice(&buf[*pos..*pos + size]);
        *pos += size;
        if &buf[*pos..*pos + 2] != b"\r\n" {
            return Err(Strict::Ambiguous("chunk data not followed by CRLF".into()));
        }
        *pos += 2;
    }
}

/// Where the first request in `buf` ends, read leniently as a permissive server would (any
/// line end, Transfer-Encoding mentioning `chunked` wins, else the first Content-Length's
/// digits); `None` while it seems incomplete.
pub fn lenient_end(buf: &[u8]) -> Option<usize> {
    let (head_end, body_start) = find_head_end(buf)?;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let mut chunked = false;
    let mut length = None;
    for l in head.lines().skip(1) {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        match name.trim() {
            "transfer-encoding" if value.contains("chunked") => chunked = true,
            "content-length" if length.is_none() => {
                let digits: String = value
                    .trim()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                length = digits.parse::<usize>().ok();
            }
            _ => {}
        }
    }
    let mut pos = body_start;
    if chunked {
        loop {
            let rest = &buf[pos..];
            let lf = rest.iter().position(|&b| b == b'\n')?;
            let size_text: String = String::from_utf8_lossy(&rest[..lf])
                .trim()
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            pos += lf + 1;
            let size = usize::from_str_radix(&size_text, 16).unwrap_or(0);
            if size == 0 {
                // Trailers up to an empty line.
                loop {
                    let rest = &buf[pos..];
                    let lf = rest.iter().position(|&b| b == b'\n')?;
                    pos += lf + 1;
                    if rest[..lf].trim_ascii().is_empty() {
                        return Some(pos);
                    }
                }
            }
            pos = pos.checked_add(size)?;
            if pos > buf.len() {
                return None;
            }
            // The CRLF after the data.
            let rest = &buf[pos..];
            let lf = rest.iter().take(2).position(|&b| b == b'\n')?;
            pos += lf + 1;
        }
    }
    let end = pos.checked_add(length.unwrap_or(0))?;
    (end <= buf.len()).then_some(end)
}

/// The end of a head (after its blank line) with any line ends.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(lf) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + lf;
        let next = &buf[at + 1..];
        if next.starts_with(b"\r\n") {
            return Some((at, at + 3));
        }
        if next.starts_with(b"\n") {
            return Some((at, at + 2));
        }
        i = at + 1;
    }
    None
}

/// A response as the client read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The answer carried the recording upstream's mark (it came from the upstream).
    pub from_upstream: bool,
}

/// Reads the complete responses at the start of `buf`; returns them and how many bytes they
/// took. Interim (1xx) responses are skipped.
pub fn responses(buf: &[u8], eof: bool) -> (Vec<Answer>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(&buf[pos..]) {
            Ok(httparse::Status::Complete(n)) => n,
            _ => return (out, pos),
        };
        let status = resp.code.unwrap_or(0);
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
        };
        let from_upstream = header(MARK).is_some();
        let body_start = pos + head;
        let end = if (100..200).contains(&status) || status == 204 || status == 304 {
            Some(body_start)
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            lenient_chunks_end(buf, body_start)
        } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            (buf.len() >= body_start + n).then_some(body_start + n)
        } else if eof {
            Some(buf.len())
        } else {
            None
        };
        let Some(end) = end else {
            return (out, pos);
        };
        pos = end;
        if status >= 200 {
            out.push(Answer {
                status,
                from_upstream,
            });
        }
    }
}

fn lenient_chunks_end(buf: &[u8], start: usize) -> Option<usize> {
    let mut fake = b"X / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let prefix = fake.len();
    fake.extend_from_slice(&buf[start..]);
    lenient_end(&fake).map(|e| e - prefix + start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_reading() {
        let ok = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
        let reqs = strict_requests(ok).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].body, b"hello");
        assert_eq!(reqs[1].body, b"hi");
        for (bad, incomplete) in [
            (&b"GET / HTTP/1.1\r\nHost: a\r\n X: b\r\n\r\n"[..], false),
            (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", false),
            (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", false),
            (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", false),
            (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 1\r\n\r\n", false),
            (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel", true),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true),
        ] {
            let got = strict_requests(bad).unwrap_err();
            assert_eq!(
                matches!(got, Strict::Incomplete { .. }),
                incomplete,
                "{}: {got:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn lenient_ends() {
        assert_eq!(
            lenient_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"),
            Some(27)
        );
        let bare_lf = b"POST / HTTP/1.1\nTransfer-Encoding: xchunked\n\n5\nhello\n0\n\n";
        assert_eq!(lenient_end(bare_lf), Some(bare_lf.len()));
        assert_eq!(
            lenient_end(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel"),
            None
        );
    }

    #[test]
    fn reads_responses() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Probe-Upstream: 1\r\n\r\nokHTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\nHTTP/1.1 5";
        let (answers, used) = responses(wire, false);
        assert_eq!(
            answers,
            [
                Answer {
                    status: 200,
                    from_upstream: true
                },
                Answer {
                    status: 400,
                    from_upstream: false
                }
            ]
        );
        assert_eq!(used, wire.len() - 10);
    }
}
