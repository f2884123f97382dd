//! The one JSON line writer: an object's members written straight into a byte buffer (the log's
//! per-thread scratch buffer), for the edge's access log and the sidecar's lines alike.
//!
//! Keys are static names. A [`Key`] made by [`json_key!`](crate::json_key) is the constant
//! `,"name":` copied in one piece; a plain `&'static str` name is framed as it is written. String
//! values are copied as they are unless they hold a byte JSON must escape (`"`, `\`, a control
//! byte), which `serde_json` then writes; numbers are written from their digits (`itoa`, and
//! floats as `ryu`'s shortest text, which is what `serde_json` writes too). The bytes are those
//! `serde_json` would write for the same members.

use super::Timestamp;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};

/// A member's key, `,"name":` (the comma left out for an object's first member), made at compile
/// time by [`json_key!`](crate::json_key).
#[derive(Debug, Clone, Copy)]
pub struct Key(&'static str);

impl Key {
    /// A key from its framed text `,"name":`; use [`json_key!`](crate::json_key), which frames
    /// it. The name is checked (debug builds, when written) to need no escaping.
    #[inline]
    pub const fn framed(framed: &'static str) -> Key {
        Key(framed)
    }
}

/// `,"name":` as a [`Key`](crate::json_log::Key) constant (`name`: letters, digits, `.`, `_`,
/// `@`).
#[macro_export]
macro_rules! json_key {
    ($name:literal) => {
        $crate::json_log::Key::framed(concat!(",\"", $name, "\":"))
    };
}

/// What names a member: a [`Key`] constant or a plain static name.
pub trait FieldKey: Copy {
    /// Appends the key with its colon, and the comma before it unless it is the first member.
    fn put(self, line: &mut Vec<u8>, first: bool);
}

impl FieldKey for Key {
    #[inline]
    fn put(self, line: &mut Vec<u8>, first: bool) {
        debug_assert!(
            self.0.len() > 4
                && self.0.starts_with(",\"")
                && self.0.ends_with("\":")
                && plain_name(&self.0[2..self.0.len() - 2]),
            "json key {:?} is not a plain `,\"name\":`",
            self.0
        );
        let framed = self.0.as_bytes();
        line.extend_from_slice(if first { &framed[1..] } else { framed });
    }
}

impl FieldKey for &'static str {
    #[inline]
    fn put(self, line: &mut Vec<u8>, first: bool) {
        debug_assert!(plain_name(self), "json key {self:?} is not a plain name");
        if !first {
            line.push(b',');
        }
        line.push(b'"');
        line.extend_from_slice(self.as_bytes());
        line.extend_from_slice(b"\":");
    }
}

/// A key's name as written (no escaping needed): OTel attribute names and `@timestamp`.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@'))
}

/// A JSON object's members written in place (see `JsonLog::send_fields`, and [`Fields::open`]
/// for a line of its own).
pub struct Fields<'b> {
    line: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> Fields<'b> {
    /// Opens an object at the end of `line`; [`Fields::close`] ends it.
    #[inline]
    pub fn open(line: &'b mut Vec<u8>) -> Self {
        line.push(b'{');
        Fields { line, first: true }
    }

    /// Continues the object opened in `line` (`first`: it has no member yet).
    #[inline]
    pub(super) fn after(line: &'b mut Vec<u8>, first: bool) -> Self {
        Fields { line, first }
    }

    /// Ends the object.
    #[inline]
    pub fn close(self) {
        self.line.push(b'}');
    }

    #[inline]
    fn key(&mut self, key: impl FieldKey) {
        key.put(self.line, std::mem::take(&mut self.first));
    }

    /// A text value (escaped where it must be); nothing (no member) for `None`.
    #[inline]
    pub fn str<'v>(&mut self, key: impl FieldKey, value: impl Into<Option<&'v str>>) -> &mut Self {
        if let Some(value) = value.into() {
            self.key(key);
            push_json_str(self.line, value);
        }
        self
    }

    /// A text value known to need no escaping (the program's own names and digits, a parsed
    /// method: checked in debug builds), copied without looking at its bytes; nothing (no
    /// member) for `None`.
    #[inline]
    pub fn clean<'v>(
        &mut self,
        key: impl FieldKey,
        value: impl Into<Option<&'v str>>,
    ) -> &mut Self {
        if let Some(value) = value.into() {
            debug_assert!(!needs_escape(value.as_bytes()), "{value:?} needs escaping");
            self.key(key);
            self.line.push(b'"');
            self.line.extend_from_slice(value.as_bytes());
            self.line.push(b'"');
        }
        self
    }

    /// JSON text written as it is (`true`, `null`).
    #[inline]
    pub fn raw(&mut self, key: impl FieldKey, json: &str) -> &mut Self {
        self.key(key);
        self.line.extend_from_slice(json.as_bytes());
        self
    }

    /// An unsigned integer.
    #[inline]
    pub fn uint(&mut self, key: impl FieldKey, value: u64) -> &mut Self {
        self.key(key);
        self.line
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    /// A number as `ryu`'s shortest round-trip text (`null` when not finite), the text
    /// `serde_json` writes.
    #[inline]
    pub fn float(&mut self, key: impl FieldKey, value: f64) -> &mut Self {
        self.key(key);
        push_float(self.line, value);
        self
    }

    /// An address as a string, `""` when unknown.
    #[inline]
    pub fn ip(&mut self, key: impl FieldKey, ip: Option<IpAddr>) -> &mut Self {
        self.key(key);
        self.line.push(b'"');
        if let Some(ip) = ip {
            push_ip(self.line, ip);
        }
        self.line.push(b'"');
        self
    }

    /// `"ip:port"`, `"[ip6]:port"`.
    #[inline]
    pub fn socket_addr(&mut self, key: impl FieldKey, addr: SocketAddr) -> &mut Self {
        self.key(key);
        self.line.push(b'"');
        if addr.is_ipv6() {
            self.line.push(b'[');
            push_ip(self.line, addr.ip());
            self.line.push(b']');
        } else {
            push_ip(self.line, addr.ip());
        }
        self.line.push(b':');
        self.line
            .extend_from_slice(itoa::Buffer::new().format(addr.port()).as_bytes());
        self.line.push(b'"');
        self
    }

    /// An array of unsigned integers.
    #[inline]
    pub fn uints(
        &mut self,
        key: impl FieldKey,
        values: impl IntoIterator<Item = u64>,
    ) -> &mut Self {
        self.array(key, values, |line, v| {
            line.extend_from_slice(itoa::Buffer::new().format(v).as_bytes())
        })
    }

    /// An array of texts (escaped where they must be).
    #[inline]
    pub fn strs<'s>(
        &mut self,
        key: impl FieldKey,
        values: impl IntoIterator<Item = &'s str>,
    ) -> &mut Self {
        self.array(key, values, push_json_str)
    }

    #[inline]
    fn array<T>(
        &mut self,
        key: impl FieldKey,
        values: impl IntoIterator<Item = T>,
        mut push: impl FnMut(&mut Vec<u8>, T),
    ) -> &mut Self {
        self.key(key);
        self.line.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.line.push(b',');
            }
            push(self.line, v);
        }
        self.line.push(b']');
        self
    }

    /// A [`Timestamp`].
    #[inline]
    pub fn timestamp(&mut self, key: impl FieldKey, at: Timestamp) -> &mut Self {
        self.key(key);
        let mut text = [0; 27];
        at.write(&mut text);
        self.line.push(b'"');
        self.line.extend_from_slice(&text);
        self.line.push(b'"');
        self
    }

    /// Any value (a number, a bool, an `Option`, a struct): serde_json writes it (`null` if it
    /// fails to serialise).
    #[inline]
    pub fn value<T: Serialize + ?Sized>(&mut self, key: impl FieldKey, value: &T) -> &mut Self {
        self.key(key);
        self.serialized(value);
        self
    }

    /// A member whose name is chosen at run time (escaped like a value), its value written by
    /// serde_json.
    #[inline]
    pub fn named<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.line.push(b',');
        }
        push_json_str(self.line, name);
        self.line.push(b':');
        self.serialized(value);
        self
    }

    #[inline]
    fn serialized<T: Serialize + ?Sized>(&mut self, value: &T) {
        let start = self.line.len();
        if serde_json::to_writer(&mut *self.line, value).is_err() {
            self.line.truncate(start);
            self.line.extend_from_slice(b"null");
        }
    }

    /// The members of `object` (a struct or a map, as in `#[serde(flatten)]`), after these.
    #[inline]
    pub fn flatten<T: Serialize + ?Sized>(&mut self, object: &T) -> &mut Self {
        // Written in place; `{…}` keeps its members without the braces, and `{}` (or a value
        // that is not an object, or fails to serialise) adds nothing.
        let start = self.line.len();
        let written = serde_json::to_writer(&mut *self.line, object).is_ok();
        let members = self.line.len().saturating_sub(start) > 2
            && self.line.get(start) == Some(&b'{')
            && self.line.last() == Some(&b'}');
        if !(written && members) {
            self.line.truncate(start);
            return self;
        }
        self.line.pop();
        if std::mem::take(&mut self.first) {
            self.line.remove(start);
        } else {
            self.line[start] = b',';
        }
        self
    }
}

/// Appends a JSON number as `ryu`'s shortest round-trip text writes it (`null` when not
/// finite). A millisecond figure measured in nanoseconds (`1.25`, `0.412345`: at most six
/// decimals, 15 significant digits) from 10 ns up to about 11.6 days (1e9 ms), as
/// [`super::millis`] computes it, is written from its integer digits; ryu runs only for the rest
/// (below 10 ns, above 1e9 ms, or a value a rounding step away from its nanosecond decimal, such
/// as `as_secs_f64() * 1000.0` gives about one time in four, whose shortest text has 16-17
/// digits).
#[inline]
pub fn push_float(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
    } else if !push_micro_decimal(out, value) {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    }
}

/// Writes `value` when it is the double nearest a decimal of six places at most, within
/// `[1e-5, 1e9)`; `false` (nothing written) otherwise.
///
/// Why this is ryu's text: such a decimal has at most 15 significant digits, and two different
/// decimals of at most 15 significant digits never round to the same double (DBL_DIG is 15), so
/// it is the only decimal that short which reads back as `value`, hence the shortest one ryu
/// finds. In this range ryu writes it in plain notation, `int.frac` (`0.frac` below 1, `.0`
/// for a whole number).
#[inline]
fn push_micro_decimal(out: &mut Vec<u8>, value: f64) -> bool {
    if !(1e-5..1e9).contains(&value) {
        return false;
    }
    // `value * 1e6` is within a quarter of the integer `m` when `value` is `m / 1e6` rounded
    // (m < 2^53: the division below is exact but for its one correct rounding).
    let micros = (value * 1e6).round();
    if micros / 1e6 != value {
        return false;
    }
    let micros = micros as u64;
    out.extend_from_slice(itoa::Buffer::new().format(micros / 1_000_000).as_bytes());
    out.push(b'.');
    let mut frac = (micros % 1_000_000) as u32;
    if frac == 0 {
        out.push(b'0');
        return true;
    }
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let len = 6 - digits.iter().rev().take_while(|&&d| d == b'0').count();
    out.extend_from_slice(&digits[..len]);
    true
}

/// Appends the address as `Display` writes it; an IPv4 address (the usual case) without the
/// formatting machinery.
#[inline]
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Written on the stack, appended once.
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.extend_from_slice(&text[..len]);
        }
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// Whether JSON must escape a byte of `text` (`"`, `\\`, a control byte below 0x20): eight bytes
/// at a time (the classic "has a byte less than n / equal to c" word tests, exact for whether
/// any byte is one), the tail one by one.
#[inline]
pub fn needs_escape(text: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut words = text.chunks_exact(8);
    for word in &mut words {
        let Ok(bytes) = <[u8; 8]>::try_from(word) else {
            return true;
        };
        let x = u64::from_le_bytes(bytes);
        if below(x, 0x20) | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')))
            != 0
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// `value` as a JSON string.
#[inline]
pub fn push_json_str(out: &mut Vec<u8>, value: &str) {
    if !needs_escape(value.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // A `str` always serialises, and writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every writer of a value gives the bytes serde_json gives for it.
    #[test]
    fn members_are_serde_json_s_text() {
        let mut line = Vec::new();
        let mut f = Fields::open(&mut line);
        f.str(crate::json_key!("a.b"), "x\"y\\z\u{1}é")
            .clean("c", "GET")
            .uint(crate::json_key!("n"), u64::MAX)
            .float("d", 0.1 + 0.2)
            .float("e", f64::NAN)
            .ip("ip", Some("2001:db8::1".parse().unwrap()))
            .ip("none", None)
            .socket_addr("s4", "10.0.0.1:80".parse().unwrap())
            .socket_addr("s6", "[::1]:8443".parse().unwrap())
            .uints("ids", [1, 22])
            .strs("t", ["q", "x\"y"])
            .raw("b", "true")
            .value("v", &Some(1.5f64))
            .named("dyn \"name\"", &serde_json::json!({"k": [1]}))
            .str("absent", None)
            .clean("absent2", None);
        f.close();
        // serde_json's text of the same members, in order.
        let members: [(&str, serde_json::Value); 14] = [
            ("a.b", "x\"y\\z\u{1}é".into()),
            ("c", "GET".into()),
            ("n", u64::MAX.into()),
            ("d", (0.1 + 0.2).into()),
            ("e", serde_json::Value::Null),
            ("ip", "2001:db8::1".into()),
            ("none", "".into()),
            ("s4", "10.0.0.1:80".into()),
            ("s6", "[::1]:8443".into()),
            ("ids", serde_json::json!([1, 22])),
            ("t", serde_json::json!(["q", "x\"y"])),
            ("b", true.into()),
            ("v", 1.5.into()),
            ("dyn \"name\"", serde_json::json!({"k": [1]})),
        ];
        let want = members
            .iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(String::from_utf8(line).unwrap(), format!("{{{want}}}"));
        let mut empty = Vec::new();
        Fields::open(&mut empty).close();
        assert_eq!(empty, b"{}");
    }

    /// `flatten` writes an object's members (as `#[serde(flatten)]` does), nothing for `{}` or
    /// for a value that is not an object, with or without members before them.
    #[test]
    fn flatten_writes_an_object_s_members() {
        let object = serde_json::json!({"a": 1, "b": "x\"y"});
        let mut line = Vec::new();
        let mut f = Fields::open(&mut line);
        f.flatten(&serde_json::json!({}))
            .flatten(&"text")
            .flatten(&object)
            .flatten(&serde_json::json!({}))
            .flatten(&[1, 2])
            .uint("n", 7)
            .flatten(&object);
        f.close();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"a":1,"b":"x\"y","n":7,"a":1,"b":"x\"y"}"#
        );
        let mut empty = Vec::new();
        let mut f = Fields::open(&mut empty);
        f.flatten(&serde_json::json!({})).flatten(&1);
        f.close();
        assert_eq!(empty, b"{}");
        // A serialiser that fails after one member leaves the line as it was.
        struct FailsMidway;
        impl Serialize for FailsMidway {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::{Error, SerializeMap};
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("a", &1)?;
                Err(S::Error::custom("midway"))
            }
        }
        let mut line = Vec::new();
        let mut f = Fields::open(&mut line);
        f.uint("n", 7).flatten(&FailsMidway).flatten(&FailsMidway);
        f.close();
        assert_eq!(line, br#"{"n":7}"#);
    }

    #[test]
    fn floats_are_ryus_text() {
        let ryu_text = |v: f64| {
            if v.is_finite() {
                ryu::Buffer::new().format_finite(v).to_string()
            } else {
                "null".to_string()
            }
        };
        let check = |v: f64| {
            let mut out = Vec::new();
            push_float(&mut out, v);
            assert_eq!(out, ryu_text(v).into_bytes(), "{v:e} ({:#x})", v.to_bits());
        };
        // Durations as the two-rounding `as_secs_f64() * 1000.0` gives them (not as
        // `json_log::millis` does): every nanosecond count below 1 ms and spread samples up to
        // 20 minutes, with the seconds part both zero and not; about one in four is a step off
        // its decimal and goes to ryu.
        let mut fast = 0u64;
        let mut all = 0u64;
        for nanos in (0..1_000_000u64).chain((0..500_000u64).map(|i| i * 2_400_011 + 7)) {
            let v = std::time::Duration::from_nanos(nanos).as_secs_f64() * 1000.0;
            check(v);
            all += 1;
            fast += u64::from(push_micro_decimal(&mut Vec::new(), v));
        }
        // The shortcut takes most of them (the rest go to ryu).
        assert!(fast * 3 > all * 2, "{fast} of {all}");
        // Bit patterns around the range's ends and doubles of every magnitude.
        for edge in [
            1e-5,
            1e9,
            1.0,
            0.1,
            1e-6,
            999_999_999.999_999,
            1e-300,
            1e300,
        ] {
            let bits = f64::to_bits(edge);
            for d in 0..200u64 {
                check(f64::from_bits(bits + d));
                check(f64::from_bits(bits - d));
                check(-f64::from_bits(bits + d));
            }
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..300_000 {
            // xorshift: arbitrary bit patterns, and decimals of up to six places.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(f64::from_bits(x));
            check((x % 1_000_000_000_000_000) as f64 / 1e6);
            check((x % 100_000_000) as f64 / 1e6);
            check((x % 1000) as f64 / 1e3);
        }
        for v in [
            0.0,
            -0.0,
            1.25,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
        ] {
            check(v);
        }
    }

    #[test]
    fn ip_text_is_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "192.0.2.9",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = b"x".to_vec();
            push_ip(&mut out, ip);
            assert_eq!(out, format!("x{ip}").into_bytes());
        }
    }

    #[test]
    fn escape_check_is_the_byte_rule() {
        let naive = |t: &[u8]| t.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        // Every byte value at every position of texts of 0..=19 bytes around it, on a plain
        // and on a UTF-8 background (high bytes next to the probe must not hide or fake one).
        for background in [b'a', 0xc3] {
            for len in 0..20 {
                for at in 0..len {
                    for probe in 0..=255u8 {
                        let mut text = vec![background; len];
                        text[at] = probe;
                        assert_eq!(needs_escape(&text), naive(&text), "{text:?}");
                    }
                }
            }
        }
        assert!(!needs_escape(b"/index.html?q=1&r=\xc3\xa9"));
        assert!(needs_escape(b"/index.html?q=1&r=\xc3\xa9\"") && needs_escape(b"/a\tb"));
    }
}
