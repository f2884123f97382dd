//! Native detectors for what regexes do badly.

mod jose;
pub(crate) mod log4j;
pub(crate) mod path;
mod protocol;
pub(crate) mod shell;
pub(crate) mod sqli;
mod sqli_tokens;
pub(crate) mod xss;

use crate::extract::Field;
use std::ops::Range;

/// A named detector usable as a rule operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Detector {
    /// SQL injection by token-sequence shape in string / number context.
    Sqli,
    /// `Sqli` on a value whose backslashes were not decoded (`It\'s me'
    /// or 1=1--`); only values with a backslash before a quote are read.
    SqliBackslashed,
    /// HTML/JS injection: tags, event handlers, URL schemes, JS sinks.
    Xss,
    /// HTML injection: markup that links to, loads from or posts to a URL
    /// (`<a href=…>`, `<img src=…>`, `<form action=…>`, CSS `url(…)`).
    HtmlInjection,
    /// `HtmlInjection` for any linking element, wherever it sits in the
    /// value (paranoia 2).
    HtmlLinks,
    /// Command injection: a separator, then a command word, read as a shell would.
    Shell,
    /// A value that is, as a whole, one command line (`nc -e /bin/sh …`,
    /// `wget http://…`, `ansible all -m ping`): no separator needed.
    CommandLine,
    /// `Shell` on the value with its C / JS escapes decoded (`\nid`,
    /// `\x0auname -a`); only values holding a backslash are read.
    ShellEscaped,
    /// `Shell` on the value as received, for cmd.exe variables named with
    /// two hex digits (`%cd%`, `%date%`) that percent-decoding mangles.
    ShellUndecoded,
    /// Log4Shell: a Log4j lookup that resolves to `jndi:` however nested.
    Log4j,
    /// An attack in a JSON Web Token's claims, read by the detector named.
    Jwt(jose::Reader),
    /// Path traversal / file inclusion by path grammar, every spelling of
    /// dot and separator folded.
    Path,
    /// The climbing part of `Path` only (for the request path).
    PathClimb,
    /// A request method outside the standard HTTP set.
    UnknownMethod,
    /// A malformed or parser-confusing request Content-Type.
    ContentType,
    /// A Content-Range request header that is not a byte range.
    ContentRange,
    /// An Accept-Encoding naming a coding no client implements.
    AcceptEncoding,
    /// An Accept asking for a response charset the WAF cannot read.
    AcceptCharset,
    /// A request-line protocol version other than HTTP/1.0, 1.1, 2 or 3.
    HttpVersion,
    /// A line break in a query or form part without `=`: the part is read
    /// as a value with an empty name, but it is as much a name as a value.
    NamelessLineBreak,
    /// A `_charset_` field declaring an encoding a browser never submits a
    /// form in (UTF-7/16/32, EBCDIC, a malformed name).
    FormCharset,
}

impl Detector {
    /// Every detector by the name the rule files give it.
    pub(crate) const BY_NAME: &'static [(&'static str, Detector)] = &[
        ("sqli", Detector::Sqli),
        ("sqli_backslashed", Detector::SqliBackslashed),
        ("xss", Detector::Xss),
        ("html_injection", Detector::HtmlInjection),
        ("html_links", Detector::HtmlLinks),
        ("shell", Detector::Shell),
        ("shell_escaped", Detector::ShellEscaped),
        ("shell_undecoded", Detector::ShellUndecoded),
        ("command_line", Detector::CommandLine),
        ("log4j", Detector::Log4j),
        ("jwt_sqli", Detector::Jwt(jose::Reader::Sqli)),
        ("jwt_xss", Detector::Jwt(jose::Reader::Xss)),
        ("jwt_shell", Detector::Jwt(jose::Reader::Shell)),
        ("jwt_path", Detector::Jwt(jose::Reader::Path)),
        ("jwt_log4j", Detector::Jwt(jose::Reader::Log4j)),
        ("path", Detector::Path),
        ("path_climb", Detector::PathClimb),
        ("unknown_method", Detector::UnknownMethod),
        ("content_type", Detector::ContentType),
        ("content_range", Detector::ContentRange),
        ("accept_encoding", Detector::AcceptEncoding),
        ("accept_charset", Detector::AcceptCharset),
        ("http_version", Detector::HttpVersion),
        ("nameless_line_break", Detector::NamelessLineBreak),
        ("form_charset", Detector::FormCharset),
    ];

    pub(crate) fn parse(name: &str) -> Option<Detector> {
        Self::BY_NAME
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, d)| d)
    }

    /// Whether the detector can only fire on a value holding a byte plain
    /// text (letters, digits, spaces, `_ , @ ! ?`) never has: its trigger
    /// bytes (`triggers`) hold none of them. The shell reader needs a
    /// separator, `$` or `{`, the command-line reader an option's `-`, a
    /// path's `/` or an address's `.`, the Log4j resolver a `$`, the XSS
    /// reader one of `: = < ( ` . [`, the HTML-injection reader a `<` or a
    /// `(`, the name-less line break a line break, the `Accept` charset
    /// check a `=`; the SQL reader a space among others, the path reader
    /// the digit `0` of `0x2e0x2e0x2f…` among others (it is not one). A
    /// group of such detectors and gated patterns skips plain values
    /// unread, as a group of gated patterns alone does, and the engine does
    /// not call them on a plain value
    /// (`engine::tests::punctuation_detectors_find_nothing_in_plain_text`).
    pub(crate) fn needs_punctuation(self) -> bool {
        let plain = PLAIN_TEXT.bits();
        self.triggers()
            .is_some_and(|t| t.bits().iter().zip(plain).all(|(t, p)| t & p == 0))
    }

    /// The bytes without one of which the detector never reports on a
    /// value (`None`: it can report on a value of any bytes — the protocol
    /// checks reject all but the valid forms). Each set sits next to its
    /// detector and is the one its own first check reads, so the two cannot
    /// drift; `detect::triggers::tests` fails if a value holding none of a
    /// detector's trigger bytes ever yields a hit. A rule group whose
    /// detectors, gates and decoding steps all have trigger bytes can skip
    /// a value holding none of them.
    pub(crate) fn triggers(self) -> Option<Triggers> {
        match self {
            Detector::Sqli => Some(sqli::TRIGGERS),
            Detector::SqliBackslashed => Some(sqli::BACKSLASH_TRIGGERS),
            Detector::Xss => Some(xss::TRIGGERS),
            Detector::HtmlInjection | Detector::HtmlLinks => Some(xss::HTML_INJECTION_TRIGGERS),
            Detector::Shell => Some(shell::TRIGGERS),
            Detector::ShellEscaped => Some(shell::ESCAPED_TRIGGERS),
            Detector::ShellUndecoded => Some(shell::UNDECODED_TRIGGERS),
            Detector::CommandLine => Some(shell::COMMAND_LINE_TRIGGERS),
            Detector::Log4j => Some(log4j::TRIGGERS),
            Detector::Jwt(_) => Some(jose::TRIGGERS),
            Detector::Path | Detector::PathClimb => Some(path::TRIGGERS),
            Detector::AcceptCharset => Some(protocol::ACCEPT_CHARSET_TRIGGERS),
            Detector::NamelessLineBreak => Some(protocol::LINE_BREAK_TRIGGERS),
            Detector::UnknownMethod
            | Detector::ContentType
            | Detector::ContentRange
            | Detector::AcceptEncoding
            | Detector::HttpVersion
            | Detector::FormCharset => None,
        }
    }

    /// Whether the detector judges a stretch of text wherever it starts.
    /// The SQL detectors do not: they read a value as pasted after a
    /// quote, so a window opening mid-string would read as a break-out.
    pub(crate) fn reads_anywhere(self) -> bool {
        !matches!(self, Detector::Sqli | Detector::SqliBackslashed)
    }

    /// Literals (ASCII case ignored) the engine adds to its shared literal
    /// scan for this detector: `detect_field` is then told whether the
    /// value holds one of them, at no cost when the value was scanned
    /// anyway. A detector plugs in by listing its anchors here and reading
    /// `anchored` in `detect_field` (how it uses them is its own: the SQL
    /// detector needs one of its keywords only in a value without SQL
    /// punctuation).
    pub(crate) fn anchors(self) -> &'static [&'static str] {
        match self {
            Detector::Sqli => sqli::KEYWORDS,
            _ => &[],
        }
    }

    /// `detect` for a value of `field`: the detectors that judge a value
    /// by the field it came in read the field's name and source; those
    /// with `anchors` may ask `anchored` whether the value holds one.
    pub(crate) fn detect_field(
        self,
        field: &Field<'_>,
        v: &[u8],
        anchored: impl FnOnce() -> bool,
    ) -> Option<Range<usize>> {
        match self {
            Detector::NamelessLineBreak => protocol::nameless_line_break(field, v),
            Detector::FormCharset => protocol::form_charset(field, v),
            Detector::Sqli => sqli::detect_with(v, anchored),
            _ => self.detect(v),
        }
    }

    /// The span of the value that convinced the detector, if any.
    pub(crate) fn detect(self, v: &[u8]) -> Option<Range<usize>> {
        match self {
            Detector::Sqli => sqli::detect(v),
            Detector::SqliBackslashed => sqli::detect_backslashed(v),
            Detector::Xss => xss::detect(v),
            Detector::HtmlInjection => xss::detect_html_injection(v),
            Detector::HtmlLinks => xss::detect_html_links(v),
            Detector::Shell => shell::detect(v),
            Detector::ShellEscaped => shell::detect_escaped(v),
            Detector::ShellUndecoded => shell::detect_undecoded(v),
            Detector::CommandLine => shell::detect_command_line(v),
            Detector::Log4j => log4j::detect(v),
            Detector::Jwt(r) => jose::detect(v, r),
            Detector::Path => path::detect(v),
            Detector::PathClimb => path::detect_climb(v),
            Detector::UnknownMethod => {
                const KNOWN: &[&[u8]] = &[
                    b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS",
                ];
                (!KNOWN.contains(&v)).then_some(0..v.len())
            }
            Detector::ContentType => protocol::content_type(v),
            Detector::ContentRange => protocol::content_range(v),
            Detector::AcceptEncoding => protocol::accept_encoding(v),
            Detector::AcceptCharset => protocol::accept_charset(v),
            // Nothing without the field: see `detect_field`.
            Detector::NamelessLineBreak | Detector::FormCharset => None,
            Detector::HttpVersion => {
                // HTTP/0.9 has no headers (no Host, no Content-Type) for
                // anything to check; other numbers probe the server's parser.
                const KNOWN: &[&[u8]] = &[
                    b"HTTP/1.0",
                    b"HTTP/1.1",
                    b"HTTP/2",
                    b"HTTP/2.0",
                    b"HTTP/3",
                    b"HTTP/3.0",
                ];
                (!KNOWN.contains(&v)).then_some(0..v.len())
            }
        }
    }
}

/// A detector's trigger bytes (`Detector::triggers`): a value holding
/// none of them never yields a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Triggers {
    /// The bytes, one by one.
    pub bytes: &'static [u8],
    /// Every byte from 0x80 up is a trigger too (Unicode look-alikes).
    pub non_ascii: bool,
}

impl Triggers {
    pub(crate) const fn new(bytes: &'static [u8]) -> Triggers {
        Triggers {
            bytes,
            non_ascii: false,
        }
    }

    pub(crate) const fn contains(&self, b: u8) -> bool {
        if self.non_ascii && b >= 0x80 {
            return true;
        }
        let mut i = 0;
        while i < self.bytes.len() {
            if self.bytes[i] == b {
                return true;
            }
            i += 1;
        }
        false
    }

    /// The set as 256 bits, bit `b & 63` of word `b >> 6` for byte `b`.
    pub(crate) const fn bits(&self) -> [u64; 4] {
        let mut s = [0u64; 4];
        let mut b = 0usize;
        while b < 256 {
            if self.contains(b as u8) {
                s[b >> 6] |= 1 << (b & 63);
            }
            b += 1;
        }
        s
    }
}

/// Bytes of ordinary text: letters, digits, space and `_ , @ ! ?` (as the
/// engine's `prefilter::PLAIN_TEXT`: a plain value holds only these;
/// `engine::tests::punctuation_detectors_find_nothing_in_plain_text`
/// checks the two sets are the same).
pub(crate) const PLAIN_TEXT: Triggers =
    Triggers::new(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _,@!?");

/// `table` with `mark` or-ed into the entry of every byte of `bytes`: the
/// detectors' one-pass byte-class tables are built with it at compile time.
pub(crate) const fn mark_bytes(mut table: [u8; 256], bytes: &[u8], mark: u8) -> [u8; 256] {
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] |= mark;
        i += 1;
    }
    table
}

#[cfg(test)]
mod triggers;
#[cfg(test)]
mod worst_case;

/// Test support shared by the detectors' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::Detector;
    use crate::extract::{Class, Field};
    use std::borrow::Cow;

    /// Every detector the rule files can name (`Detector::BY_NAME`).
    pub(crate) fn all() -> Vec<Detector> {
        // A name given twice would hide the second detector from the rule files.
        for &(name, d) in Detector::BY_NAME {
            assert_eq!(Detector::parse(name), Some(d), "{name}");
        }
        Detector::BY_NAME.iter().map(|&(_, d)| d).collect()
    }

    /// The detector's answer for `v` as a name-less query part (the field
    /// the field-reading detectors judge most) and on its own, the SQL
    /// detector told that a keyword is present (so it reads the most).
    pub(crate) fn hit(d: Detector, v: &[u8]) -> bool {
        hit_when(d, v, true)
    }

    /// `hit`, with the engine's answer to "does the value hold one of the
    /// detector's keyword anchors" given as `anchored`.
    pub(crate) fn hit_when(d: Detector, v: &[u8], anchored: bool) -> bool {
        let field = Field {
            class: Class::Arg,
            source: "args",
            name: Cow::Borrowed(""),
            value: Cow::Borrowed(v),
            json_path: None,
            include_like: false,
            continued: false,
            whole: false,
            not_token: false,
            cookie_name: None,
        };
        d.detect_field(&field, v, || anchored).is_some() || d.detect(v).is_some()
    }

    /// Asserts that `found` answers `expect` for every case; names every case that does not.
    pub(crate) fn assert_each(found: impl Fn(&[u8]) -> bool, expect: bool, cases: &[&str]) {
        let wrong: Vec<&str> = cases
            .iter()
            .copied()
            .filter(|v| found(v.as_bytes()) != expect)
            .collect();
        let what = if expect { "missed" } else { "false positive" };
        assert!(wrong.is_empty(), "{what}: {wrong:?}");
    }
}
