//! The probe's cases, by class: raw request bytes and what RFC 9112 / 9110 allow a proxy to do
//! with them. Each case's target is `{path}` (the runner's path prefix), its host `probe.test`
//! unless the case is about the host.

/// What a proxy may do with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A valid request: it must be forwarded (refusing it is a defect).
    Accept,
    /// RFC 9112 / 9110 require refusing it (forwarding it is a defect).
    Refuse,
    /// Either refused, or forwarded as one unambiguous, normalised request.
    Either,
}

/// One case.
#[derive(Debug, Clone)]
pub struct Case {
    pub class: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
    pub expect: Expect,
    /// Requests the client sends (answers it waits for).
    pub requests: usize,
    /// The body the upstream must receive when the (first) request is forwarded.
    pub body: Option<Vec<u8>>,
    /// The case's fault lies after the first chunk of a chunked body: a proxy that streams the
    /// body has sent the head before it could see it (the upstream then gets an incomplete
    /// request and a closed connection).
    pub late: bool,
    /// The client sends less body than it declares: a proxy that streams bodies forwards what
    /// came, and the upstream waits for the rest.
    pub partial: bool,
}

use Expect::{Accept, Either, Refuse};

const HOST: &str = "probe.test";
const HELLO: &[u8] = b"5\r\nhello\r\n0\r\n\r\n";

struct Builder {
    path: String,
    out: Vec<Case>,
    class: &'static str,
}

impl Builder {
    fn add(&mut self, name: &str, bytes: Vec<u8>, expect: Expect) -> &mut Case {
        self.out.push(Case {
            class: self.class,
            name: name.to_string(),
            bytes,
            expect,
            requests: 1,
            body: None,
            late: false,
            partial: false,
        });
        self.out.last_mut().unwrap_or_else(|| unreachable!())
    }

    /// `METHOD {path} HTTP/1.1`, Host, `lines` (each CRLF-ended by the caller's choice: the
    /// text is inserted as is), the blank line, `body`.
    fn raw(&self, method: &str, lines: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "{method} {} HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n",
            self.path
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    /// A POST whose framing is `te_line` (a whole header line, CRLF included) and the body
    /// `hello` chunked.
    fn te(&mut self, name: &str, te_line: &str, expect: Expect) {
        let bytes = self.raw("POST", te_line, HELLO);
        let accept = expect == Accept;
        let case = self.add(name, bytes, expect);
        if accept {
            case.body = Some(b"hello".to_vec());
        }
    }

    /// A POST with `lines` and the body `hello`.
    fn cl(&mut self, name: &str, lines: &str, expect: Expect) {
        let bytes = self.raw("POST", lines, b"hello");
        let accept = expect == Accept;
        let case = self.add(name, bytes, expect);
        if accept {
            case.body = Some(b"hello".to_vec());
        }
    }

    /// A chunked POST with `body` as its chunked body.
    fn chunks(
        &mut self,
        name: &str,
        body: &[u8],
        expect: Expect,
        want: Option<&[u8]>,
    ) -> &mut Case {
        let bytes = self.raw("POST", "Transfer-Encoding: chunked\r\n", body);
        let case = self.add(name, bytes, expect);
        case.body = want.map(<[u8]>::to_vec);
        case
    }

    /// A request line and `Host: probe.test` (no body).
    fn line(&mut self, name: &str, request_line: &[u8], expect: Expect) {
        let mut bytes = request_line.to_vec();
        bytes.extend_from_slice(format!("\r\nHost: {HOST}\r\n\r\n").as_bytes());
        self.add(name, bytes, expect);
    }

    /// A GET with the header lines `lines` (raw bytes, each CRLF-ended).
    fn headers(&mut self, name: &str, lines: &[u8], expect: Expect) {
        let mut bytes = format!("GET {} HTTP/1.1\r\n", self.path).into_bytes();
        bytes.extend_from_slice(lines);
        bytes.extend_from_slice(b"\r\n");
        self.add(name, bytes, expect);
    }

    /// A GET with `Host: {value}` as its only Host header.
    fn host(&mut self, name: &str, value: &[u8], expect: Expect) {
        let mut line = b"Host: ".to_vec();
        line.extend_from_slice(value);
        line.extend_from_slice(b"\r\n");
        self.headers(name, &line, expect);
    }
}

/// Every case, with `path` as the request target (e.g. `/probe`).
pub fn cases(path: &str) -> Vec<Case> {
    let mut b = Builder {
        path: path.to_string(),
        out: Vec::new(),
        class: "",
    };
    transfer_encoding(&mut b);
    content_length(&mut b);
    chunked_body(&mut b);
    request_line(&mut b);
    header_fields(&mut b);
    host(&mut b);
    pipelining(&mut b);
    expect_continue(&mut b);
    hop_by_hop(&mut b);
    b.out
}

fn transfer_encoding(b: &mut Builder) {
    b.class = "transfer-encoding";
    for (name, line, expect) in [
        ("plain", "Transfer-Encoding: chunked\r\n", Accept),
        ("no space", "Transfer-Encoding:chunked\r\n", Accept),
        (
            "tab before value",
            "Transfer-Encoding:\tchunked\r\n",
            Accept,
        ),
        ("two spaces", "Transfer-Encoding:  chunked\r\n", Accept),
        ("trailing space", "Transfer-Encoding: chunked \r\n", Accept),
        ("trailing tab", "Transfer-Encoding: chunked\t\r\n", Accept),
        ("Chunked", "Transfer-Encoding: Chunked\r\n", Accept),
        ("CHUNKED", "Transfer-Encoding: CHUNKED\r\n", Accept),
        ("lower-case name", "transfer-encoding: chunked\r\n", Accept),
        ("mixed-case name", "TrAnSfEr-EnCoDiNg: cHuNkEd\r\n", Accept),
        (
            "space before colon",
            "Transfer-Encoding : chunked\r\n",
            Refuse,
        ),
        (
            "tab before colon",
            "Transfer-Encoding\t: chunked\r\n",
            Refuse,
        ),
        (
            "chunked, identity",
            "Transfer-Encoding: chunked, identity\r\n",
            Refuse,
        ),
        (
            "identity, chunked",
            "Transfer-Encoding: identity, chunked\r\n",
            Either,
        ),
        (
            "gzip, chunked",
            "Transfer-Encoding: gzip, chunked\r\n",
            Either,
        ),
        (
            "chunked, gzip",
            "Transfer-Encoding: chunked, gzip\r\n",
            Refuse,
        ),
        ("xchunked", "Transfer-Encoding: xchunked\r\n", Refuse),
        ("chunkedx", "Transfer-Encoding: chunkedx\r\n", Refuse),
        ("ch unked", "Transfer-Encoding: ch unked\r\n", Refuse),
        ("chunked VT", "Transfer-Encoding: chunked\x0b\r\n", Refuse),
        ("VT chunked", "Transfer-Encoding: \x0bchunked\r\n", Refuse),
        ("chunked FF", "Transfer-Encoding: chunked\x0c\r\n", Refuse),
        ("chunked NUL", "Transfer-Encoding: chunked\0\r\n", Refuse),
        ("chunked CR", "Transfer-Encoding: chunked\r\r\n", Refuse),
        ("quoted", "Transfer-Encoding: \"chunked\"\r\n", Refuse),
        ("single-quoted", "Transfer-Encoding: 'chunked'\r\n", Refuse),
        ("obs-fold", "Transfer-Encoding:\r\n chunked\r\n", Either),
        (
            "obs-fold tab",
            "Transfer-Encoding: \r\n\tchunked\r\n",
            Either,
        ),
        (
            "chunked twice, one line",
            "Transfer-Encoding: chunked, chunked\r\n",
            Refuse,
        ),
        (
            "chunked twice, two lines",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            Refuse,
        ),
        (
            "chunked then identity lines",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            Refuse,
        ),
        (
            "identity then chunked lines",
            "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
            Either,
        ),
        (
            "chunked then x lines",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n",
            Refuse,
        ),
        (
            "empty list element first",
            "Transfer-Encoding: ,chunked\r\n",
            Either,
        ),
        (
            "empty list element last",
            "Transfer-Encoding: chunked,\r\n",
            Either,
        ),
        ("parameter", "Transfer-Encoding: chunked;q=1\r\n", Either),
        ("underscore name", "Transfer_Encoding: chunked\r\n", Either),
        ("NUL in name", "Transfer-Encoding\0: chunked\r\n", Refuse),
        ("NBSP after", "Transfer-Encoding: chunked\u{a0}\r\n", Refuse),
        (
            "leading space line",
            " Transfer-Encoding: chunked\r\n",
            Either,
        ),
        ("bare LF line end", "Transfer-Encoding: chunked\n", Either),
        (
            "CL then TE",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            Either,
        ),
        (
            "TE then CL",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            Either,
        ),
        (
            "TE then CL 0",
            "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
            Either,
        ),
        (
            "xchunked with CL",
            "Transfer-Encoding: xchunked\r\nContent-Length: 15\r\n",
            Either,
        ),
        (
            "TE with space before colon and CL",
            "Transfer-Encoding : chunked\r\nContent-Length: 15\r\n",
            Refuse,
        ),
        ("empty TE", "Transfer-Encoding: \r\n", Either),
    ] {
        b.te(name, line, expect);
    }
    let http10 = format!(
        "POST {} HTTP/1.0\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b.path
    );
    b.add("HTTP/1.0 with TE", http10.into_bytes(), Either);
    let get = b.raw("GET", "Transfer-Encoding: chunked\r\n", HELLO);
    // Valid HTTP, but a WAF may refuse it (servers disagree on reading a GET's body).
    b.add("GET with a chunked body", get, Either).body = Some(b"hello".to_vec());
}

fn content_length(b: &mut Builder) {
    b.class = "content-length";
    for (name, lines, expect) in [
        ("plain", "Content-Length: 5\r\n", Accept),
        ("no space", "Content-Length:5\r\n", Accept),
        ("two spaces", "Content-Length:  5\r\n", Accept),
        ("tab", "Content-Length:\t5\r\n", Accept),
        ("trailing space", "Content-Length: 5 \r\n", Accept),
        ("leading zero", "Content-Length: 05\r\n", Accept),
        ("leading zeros", "Content-Length: 0005\r\n", Accept),
        ("plus", "Content-Length: +5\r\n", Refuse),
        ("minus", "Content-Length: -5\r\n", Refuse),
        ("list of equal", "Content-Length: 5, 5\r\n", Either),
        ("list of equal, no space", "Content-Length: 5,5\r\n", Either),
        ("list of unequal", "Content-Length: 5,6\r\n", Refuse),
        ("hex", "Content-Length: 0x5\r\n", Refuse),
        ("decimal point", "Content-Length: 5.0\r\n", Refuse),
        ("exponent", "Content-Length: 5e0\r\n", Refuse),
        ("two numbers", "Content-Length: 5 5\r\n", Refuse),
        ("empty", "Content-Length: \r\n", Refuse),
        ("letters", "Content-Length: five\r\n", Refuse),
        (
            "overflow",
            "Content-Length: 99999999999999999999999\r\n",
            Refuse,
        ),
        (
            "u64 wrap to 5",
            "Content-Length: 18446744073709551621\r\n",
            Refuse,
        ),
        (
            "two equal lines",
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            Either,
        ),
        (
            "two unequal lines",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            Refuse,
        ),
        (
            "unequal lines, short first",
            "Content-Length: 3\r\nContent-Length: 5\r\n",
            Refuse,
        ),
        ("space before colon", "Content-Length : 5\r\n", Refuse),
        ("VT after", "Content-Length: 5\x0b\r\n", Refuse),
        ("NUL after", "Content-Length: 5\0\r\n", Refuse),
        ("obs-fold", "Content-Length:\r\n 5\r\n", Either),
        ("underscore name", "Content_Length: 5\r\n", Either),
        ("shorter than the body", "Content-Length: 3\r\n", Either),
    ] {
        b.cl(name, lines, expect);
    }
    let get = b.raw("GET", "Content-Length: 5\r\n", b"hello");
    b.add("GET with a body", get, Either).body = Some(b"hello".to_vec());
    let big = b.raw("POST", "Content-Length: 4294967301\r\n", b"hello");
    b.add("u32 wrap to 5 (4 GiB declared)", big, Either).partial = true;
}

fn chunked_body(b: &mut Builder) {
    b.class = "chunked body";
    let hello = Some(&b"hello"[..]);
    for (name, body, expect, want) in [
        ("plain", HELLO, Accept, hello),
        ("leading zeros", b"005\r\nhello\r\n0\r\n\r\n", Accept, hello),
        (
            "19 leading zeros",
            b"00000000000000000005\r\nhello\r\n0000\r\n\r\n",
            Accept,
            hello,
        ),
        (
            "upper-case hex",
            b"A\r\n0123456789\r\n0\r\n\r\n",
            Accept,
            Some(&b"0123456789"[..]),
        ),
        (
            "two chunks",
            b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
            Accept,
            hello,
        ),
        ("extension", b"5;ext\r\nhello\r\n0\r\n\r\n", Accept, hello),
        (
            "extension with value",
            b"5;ext=val\r\nhello\r\n0\r\n\r\n",
            Accept,
            hello,
        ),
        (
            "quoted extension",
            b"5;ext=\"v a;l\"\r\nhello\r\n0\r\n\r\n",
            Accept,
            hello,
        ),
        (
            "two extensions",
            b"5;a=b;c\r\nhello\r\n0\r\n\r\n",
            Accept,
            hello,
        ),
        (
            "BWS before ;",
            b"5 ;ext=val\r\nhello\r\n0\r\n\r\n",
            Accept,
            hello,
        ),
        (
            "BWS after ;",
            b"5; ext=val\r\nhello\r\n0\r\n\r\n",
            Accept,
            hello,
        ),
        (
            "BWS around =",
            b"5;ext = val\r\nhello\r\n0\r\n\r\n",
            Accept,
            hello,
        ),
        (
            "extension on the last chunk",
            b"5\r\nhello\r\n0;ext\r\n\r\n",
            Accept,
            hello,
        ),
        (
            "trailer",
            b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
            Accept,
            hello,
        ),
        ("empty extension", b"5;\r\nhello\r\n0\r\n\r\n", Either, None),
        ("two semicolons", b"5;;\r\nhello\r\n0\r\n\r\n", Either, None),
        ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n", Refuse, None),
        ("leading space", b" 5\r\nhello\r\n0\r\n\r\n", Either, None),
        ("trailing space", b"5 \r\nhello\r\n0\r\n\r\n", Either, None),
        ("trailing tab", b"5\t\r\nhello\r\n0\r\n\r\n", Either, None),
        ("plus", b"+5\r\nhello\r\n0\r\n\r\n", Refuse, None),
        ("minus", b"-5\r\nhello\r\n0\r\n\r\n", Refuse, None),
        ("empty size", b"\r\nhello\r\n0\r\n\r\n", Refuse, None),
        ("not hex", b"zz\r\nhello\r\n0\r\n\r\n", Refuse, None),
        ("NUL after size", b"5\0\r\nhello\r\n0\r\n\r\n", Refuse, None),
        (
            "control byte in extension",
            b"5;a\x01\r\nhello\r\n0\r\n\r\n",
            Refuse,
            None,
        ),
        (
            "bare LF after extension",
            b"5;a\nhello\r\n0\r\n\r\n",
            Refuse,
            None,
        ),
        ("bare LF after size", b"5\nhello\r\n0\r\n\r\n", Either, None),
        ("bare CR after size", b"5\rhello\r\n0\r\n\r\n", Refuse, None),
        ("bare LF after data", b"5\r\nhello\n0\r\n\r\n", Either, None),
        (
            "data not followed by CRLF",
            b"5\r\nhelloXX0\r\n\r\n",
            Refuse,
            None,
        ),
        (
            "size smaller than data",
            b"3\r\nhello\r\n0\r\n\r\n",
            Refuse,
            None,
        ),
        (
            "size larger than data",
            b"6\r\nhello\r\n0\r\n\r\n",
            Refuse,
            None,
        ),
        (
            "17 hex digits",
            b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            Refuse,
            None,
        ),
        (
            "u64 wrap to 5",
            b"10000000000000005\r\nhello\r\n0\r\n\r\n",
            Refuse,
            None,
        ),
        (
            "Content-Length in trailers",
            b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
            Either,
            None,
        ),
        (
            "Transfer-Encoding in trailers",
            b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
            Either,
            None,
        ),
        (
            "Host in trailers",
            b"5\r\nhello\r\n0\r\nHost: evil.test\r\n\r\n",
            Either,
            None,
        ),
        (
            "obs-fold in trailers",
            b"5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n",
            Either,
            None,
        ),
        (
            "trailer without colon",
            b"5\r\nhello\r\n0\r\nbad\r\n\r\n",
            Refuse,
            None,
        ),
        (
            "space before colon in trailer",
            b"5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n",
            Either,
            None,
        ),
    ] {
        b.chunks(name, body, expect, want);
    }
    // The last chunk without its final CRLF: what follows is read as trailers.
    let mut body = b"5\r\nhello\r\n0\r\n".to_vec();
    body.extend_from_slice(format!("GET {} HTTP/1.1\r\nHost: {HOST}\r\n\r\n", b.path).as_bytes());
    b.chunks("missing final CRLF, a request behind", &body, Either, None);
    // 2^64 - 1 bytes declared, 5 sent: a proxy that streams bodies forwards what came.
    let huge = b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n";
    b.chunks("16 hex digits (u64 max)", huge, Either, None)
        .partial = true;
    // Faults after a complete first chunk.
    for (name, body, expect) in [
        (
            "late: bad size",
            &b"5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n"[..],
            Refuse,
        ),
        (
            "late: size lies",
            b"5\r\nhello\r\n3\r\nhello\r\n0\r\n\r\n",
            Refuse,
        ),
        (
            "late: bare LF",
            b"5\r\nhello\r\n5;a\nhello\r\n0\r\n\r\n",
            Refuse,
        ),
        (
            "late: overflow",
            b"5\r\nhello\r\nfffffffffffffffff\r\n",
            Refuse,
        ),
        (
            "late: bad trailer",
            b"5\r\nhello\r\n0\r\nbad\r\n\r\n",
            Refuse,
        ),
    ] {
        b.chunks(name, body, expect, None).late = true;
    }
}

fn request_line(b: &mut Builder) {
    b.class = "request line";
    let p = b.path.clone();
    let abs = |authority: &str, host: &str| {
        format!("GET http://{authority}{p} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
    };
    b.add("absolute-form", abs(HOST, HOST), Accept);
    b.add(
        "absolute-form with port",
        abs("probe.test:80", "probe.test:80"),
        Accept,
    );
    b.add(
        "absolute-form, Host upper-case",
        abs(HOST, "PROBE.test"),
        Either,
    );
    b.add(
        "absolute-form, Host another host",
        abs(HOST, "other.test"),
        Either,
    );
    b.add(
        "absolute-form, Host another port",
        abs("probe.test:8443", "Probe.test.:1"),
        Either,
    );
    b.add(
        "absolute-form, Host default port",
        abs(HOST, "probe.test:80"),
        Either,
    );
    b.add(
        "absolute-form with userinfo",
        abs("u@probe.test", HOST),
        Refuse,
    );
    let no_host = format!("GET http://{HOST}{p} HTTP/1.1\r\n\r\n").into_bytes();
    b.add("absolute-form without Host", no_host, Either);
    for (name, line, expect) in [
        (
            "https scheme",
            format!("GET https://{HOST}{p} HTTP/1.1"),
            Either,
        ),
        (
            "ftp scheme",
            format!("GET ftp://{HOST}{p} HTTP/1.1"),
            Either,
        ),
        (
            "backslash authority",
            format!("GET http:/\\{HOST}{p} HTTP/1.1"),
            Either,
        ),
        (
            "scheme without //",
            format!("GET http:{HOST}{p} HTTP/1.1"),
            Either,
        ),
        (
            "double slash path",
            format!("GET //{HOST}{p} HTTP/1.1"),
            Accept,
        ),
        ("asterisk GET", "GET * HTTP/1.1".to_string(), Either),
        ("asterisk OPTIONS", "OPTIONS * HTTP/1.1".to_string(), Either),
        ("CONNECT", format!("CONNECT {HOST}:443 HTTP/1.1"), Either),
        (
            "two spaces after method",
            format!("GET  {p} HTTP/1.1"),
            Either,
        ),
        (
            "two spaces before version",
            format!("GET {p}  HTTP/1.1"),
            Either,
        ),
        ("tabs as separators", format!("GET\t{p}\tHTTP/1.1"), Either),
        ("trailing space", format!("GET {p} HTTP/1.1 "), Either),
        ("junk after version", format!("GET {p} HTTP/1.1 x"), Refuse),
        ("HTTP/1.0", format!("GET {p} HTTP/1.0"), Accept),
        ("HTTP/2.0", format!("GET {p} HTTP/2.0"), Either),
        ("HTTP/1.2", format!("GET {p} HTTP/1.2"), Either),
        ("HTTP/1.10", format!("GET {p} HTTP/1.10"), Either),
        ("HTTP/01.1", format!("GET {p} HTTP/01.1"), Either),
        ("lower-case version", format!("GET {p} http/1.1"), Either),
        ("no version (HTTP/0.9)", format!("GET {p}"), Either),
        ("method with @", format!("G@T {p} HTTP/1.1"), Refuse),
        ("lower-case method", format!("get {p} HTTP/1.1"), Either),
        ("space in target", format!("GET {p} /x HTTP/1.1"), Refuse),
        ("space in query", format!("GET {p}?a=b c HTTP/1.1"), Refuse),
        ("tab in target", format!("GET {p}\t/x HTTP/1.1"), Refuse),
        ("NUL in target", format!("GET {p}\0x HTTP/1.1"), Refuse),
        ("DEL in target", format!("GET {p}\x7fx HTTP/1.1"), Either),
        ("fragment", format!("GET {p}#frag HTTP/1.1"), Either),
        (
            "target without slash",
            "GET probe HTTP/1.1".to_string(),
            Either,
        ),
        ("empty target", "GET  HTTP/1.1".to_string(), Refuse),
    ] {
        b.line(name, line.as_bytes(), expect);
    }
    let mut eight_bit = format!("GET {p}").into_bytes();
    eight_bit.extend_from_slice(b"\xff\xfe HTTP/1.1");
    b.line("8-bit bytes in target", &eight_bit, Either);
    let bare_lf = format!("GET {p} HTTP/1.1\nHost: {HOST}\n\n").into_bytes();
    b.add("bare LF line ends", bare_lf, Either);
    let leading = format!("\r\nGET {p} HTTP/1.1\r\nHost: {HOST}\r\n\r\n").into_bytes();
    b.add("empty line before the request", leading, Accept);
    let no_host = format!("GET {p} HTTP/1.1\r\n\r\n").into_bytes();
    b.add("HTTP/1.1 without Host", no_host, Refuse);
    let long = format!("GET {p}?{} HTTP/1.1", "a".repeat(20_000));
    b.line("20 KB target", long.as_bytes(), Either);
}

fn header_fields(b: &mut Builder) {
    b.class = "header fields";
    let with = |line: &[u8]| [format!("Host: {HOST}\r\n").as_bytes(), line].concat();
    for (name, line, expect) in [
        ("no colon", &b"X-A b\r\n"[..], Refuse),
        ("space before colon", b"X-A : b\r\n", Refuse),
        ("tab before colon", b"X-A\t: b\r\n", Refuse),
        ("space in name", b"X A: b\r\n", Refuse),
        ("NUL in name", b"X\0A: b\r\n", Refuse),
        ("CR in name", b"X\rA: b\r\n", Refuse),
        ("8-bit name", b"X\xe9: b\r\n", Refuse),
        ("@ in name", b"X@A: b\r\n", Refuse),
        ("empty name", b": b\r\n", Refuse),
        ("NUL in value", b"X-A: b\0c\r\n", Refuse),
        ("bare CR in value", b"X-A: b\rc\r\n", Refuse),
        ("CR LF CR", b"X-A: b\r\n\rX-B: c\r\n", Refuse),
        ("control byte in value", b"X-A: b\x01c\r\n", Either),
        ("DEL in value", b"X-A: b\x7fc\r\n", Either),
        ("obs-text in value", b"X-A: caf\xe9\r\n", Accept),
        ("empty value", b"X-A:\r\n", Accept),
        ("bare LF line end", b"X-A: b\nX-B: c\r\n", Either),
        ("obs-fold", b"X-A: b\r\n c\r\n", Either),
        ("obs-fold with tab", b"X-A: b\r\n\tc\r\n", Either),
        ("repeated field", b"X-A: b\r\nX-A: c\r\n", Accept),
        ("underscore name", b"X_Custom: b\r\n", Either),
        (
            "X_Forwarded_For",
            b"X_Forwarded_For: 203.0.113.9\r\n",
            Either,
        ),
        ("X_Real_IP", b"X_Real_IP: 203.0.113.9\r\n", Either),
        (
            "X-Forwarded-For sent",
            b"X-Forwarded-For: 203.0.113.9\r\n",
            Accept,
        ),
    ] {
        b.headers(name, &with(line), expect);
    }
    let long = format!("Host: {HOST}\r\nX-Long: {}\r\n", "a".repeat(70_000));
    b.headers("70 KB value", long.as_bytes(), Either);
    let many: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    b.headers(
        "300 fields",
        format!("Host: {HOST}\r\n{many}").as_bytes(),
        Either,
    );
    b.headers(
        "first field folded onto the request line",
        format!(" X-A: b\r\nHost: {HOST}\r\n").as_bytes(),
        Either,
    );
}

fn host(b: &mut Builder) {
    b.class = "host";
    for (name, value, expect) in [
        ("plain", &b"probe.test"[..], Accept),
        ("upper-case", b"PROBE.TEST", Accept),
        ("trailing dot", b"probe.test.", Accept),
        ("with port", b"probe.test:8080", Accept),
        ("empty port", b"probe.test:", Accept),
        ("IPv4", b"127.0.0.1", Accept),
        ("IPv6", b"[::1]", Accept),
        ("IPv6 with port", b"[::1]:8080", Accept),
        ("underscore", b"probe_test", Accept),
        ("tab before", b"\tprobe.test", Accept),
        ("empty", b"", Either),
        ("userinfo", b"u@probe.test", Refuse),
        ("two ports", b"probe.test:80:81", Refuse),
        ("port over 65535", b"probe.test:99999", Refuse),
        ("port not digits", b"probe.test:8x", Refuse),
        ("unbracketed IPv6", b"::1", Refuse),
        ("unclosed bracket", b"[::1", Refuse),
        ("text after brackets", b"[::1]x", Refuse),
        ("name in brackets", b"[probe.test]", Refuse),
        ("path", b"probe.test/evil", Refuse),
        ("query", b"probe.test?x", Refuse),
        ("fragment", b"probe.test#x", Refuse),
        ("space inside", b"probe test", Refuse),
        ("tab inside", b"probe.test\tx", Refuse),
        ("NUL", b"probe.test\0", Refuse),
        ("list", b"probe.test, other.test", Refuse),
        ("percent-encoded", b"pr%6fbe.test", Either),
        ("leading zeros in port", b"probe.test:0080", Either),
    ] {
        b.host(name, value, expect);
    }
    b.headers(
        "two equal",
        format!("Host: {HOST}\r\nHost: {HOST}\r\n").as_bytes(),
        Refuse,
    );
    b.headers(
        "two different",
        format!("Host: {HOST}\r\nHost: other.test\r\n").as_bytes(),
        Refuse,
    );
    b.headers(
        "space before colon",
        format!("Host : {HOST}\r\n").as_bytes(),
        Refuse,
    );
    b.headers("none", b"", Refuse);
}

fn pipelining(b: &mut Builder) {
    b.class = "pipelining";
    let p = b.path.clone();
    let get = format!("GET {p} HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let bad = format!("GET {p} /x HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    b.add("two GETs", format!("{get}{get}").into_bytes(), Accept)
        .requests = 2;
    b.add(
        "good, then space in target",
        format!("{get}{bad}").into_bytes(),
        Either,
    )
    .requests = 2;
    b.add(
        "space in target, then good",
        format!("{bad}{get}").into_bytes(),
        Refuse,
    )
    .requests = 2;
    let chunked = String::from_utf8_lossy(&b.raw("POST", "Transfer-Encoding: chunked\r\n", HELLO))
        .into_owned();
    let case = b.add(
        "chunked, then GET",
        format!("{chunked}{get}").into_bytes(),
        Accept,
    );
    case.requests = 2;
    case.body = Some(b"hello".to_vec());
    let cl =
        String::from_utf8_lossy(&b.raw("POST", "Content-Length: 5\r\n", b"hello")).into_owned();
    let case = b.add(
        "Content-Length, then GET",
        format!("{cl}{get}").into_bytes(),
        Accept,
    );
    case.requests = 2;
    case.body = Some(b"hello".to_vec());
    let smuggled = format!("GET /smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    // CL.TE: a front end reading Content-Length forwards the `G`...; a back end reading chunked
    // ends at `0`.
    let clte = format!(
        "POST {p} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
        5 + smuggled.len()
    );
    b.add("CL.TE", clte.into_bytes(), Either).requests = 2;
    // TE.CL: chunked in front, Content-Length 4 behind.
    let inner = format!("POST /smuggled HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 15\r\n\r\nx=1");
    let tecl = format!(
        "POST {p} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\n",
        inner.len()
    );
    b.add("TE.CL", tecl.into_bytes(), Either).requests = 2;
    // TE.TE: one of two Transfer-Encoding lines obfuscated.
    let tete = format!(
        "POST {p} HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST /smuggled HTTP/1.1\r\n\r\n0\r\n\r\n"
    );
    b.add("TE.TE", tete.into_bytes(), Refuse).requests = 2;
    let zero = format!("POST {p} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\n\r\n{smuggled}");
    b.add(
        "Content-Length 0, then a request",
        zero.into_bytes(),
        Accept,
    )
    .requests = 2;
    let after_bad_te = format!(
        "POST {p} HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: xchunked\r\n\r\n{smuggled}"
    );
    b.add(
        "xchunked, then a request",
        after_bad_te.into_bytes(),
        Refuse,
    )
    .requests = 2;
}

fn expect_continue(b: &mut Builder) {
    b.class = "expect";
    b.cl(
        "100-continue, Content-Length",
        "Expect: 100-continue\r\nContent-Length: 5\r\n",
        Accept,
    );
    b.te(
        "100-continue, chunked",
        "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n",
        Accept,
    );
    let get = b.raw("GET", "Expect: 100-continue\r\n", b"");
    b.add("100-continue without a body", get, Accept);
    b.cl(
        "unknown expectation",
        "Expect: 100-continuex\r\nContent-Length: 5\r\n",
        Either,
    );
    b.cl(
        "100-continue upper-case",
        "Expect: 100-Continue\r\nContent-Length: 5\r\n",
        Accept,
    );
}

fn hop_by_hop(b: &mut Builder) {
    b.class = "hop-by-hop";
    b.te(
        "Connection: close, Transfer-Encoding",
        "Connection: close, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n",
        Either,
    );
    b.cl(
        "Connection: Content-Length",
        "Connection: Content-Length\r\nContent-Length: 5\r\n",
        Either,
    );
    for field in [
        "Host",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        "X-Real-IP",
        "Forwarded",
        "X-Request-Id",
    ] {
        let get = b.raw("GET", &format!("Connection: close, {field}\r\n"), b"");
        b.add(&format!("Connection: close, {field}"), get, Either);
    }
    let xff = b.raw(
        "GET",
        "X-Forwarded-For: 203.0.113.9\r\nConnection: X-Forwarded-For\r\n",
        b"",
    );
    b.add("client X-Forwarded-For named in Connection", xff, Either);
    let upgrade = b.raw(
        "GET",
        "Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n",
        b"",
    );
    b.add("h2c upgrade", upgrade, Either);
    let keep = b.raw(
        "GET",
        "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n",
        b"",
    );
    b.add("Keep-Alive", keep, Accept);
    let te = b.raw("GET", "TE: trailers\r\nConnection: TE\r\n", b"");
    b.add("TE: trailers", te, Accept);
}

#[cfg(test)]
mod tests {
    /// docs/proxy.md ("Request smuggling probe") states this count.
    #[test]
    fn the_documented_number_of_cases() {
        assert_eq!(super::cases("/probe").len(), 258);
    }
}
