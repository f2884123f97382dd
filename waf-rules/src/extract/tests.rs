use super::*;

fn fields(req: &Request<'_>) -> Vec<(String, String)> {
    let f = extract(req, &Limits::default());
    f.list
        .iter()
        .map(|x| {
            let v = String::from_utf8_lossy(&x.value).into_owned();
            (x.target(&f), v)
        })
        .collect()
}

fn req<'a>(query: &'a str, headers: &'a [(&'a str, &'a [u8])], body: &'a [u8]) -> Request<'a> {
    Request {
        method: "POST",
        path: "/p",
        query,
        headers,
        body,
        body_truncated: false,
        version: "HTTP/1.1",
    }
}

#[test]
fn query_cookies_headers() {
    let h: [(&str, &[u8]); 2] = [("Cookie", b"sid=a:b; theme=dark"), ("User-Agent", b"x")];
    let f = fields(&req("q=a+b%3C&/flag", &h, b""));
    assert!(f.contains(&("args:q".into(), "a b<".into())));
    assert!(f.contains(&("args:".into(), "/flag".into())));
    assert!(f.contains(&("cookie:sid".into(), "a:b".into())));
    // Plain tokens (`theme`, `dark`, `q`) are counted, not listed.
    assert!(!f
        .iter()
        .any(|(_, v)| v == "dark" || v == "q" || v == "theme"));
    let h: [(&str, &[u8]); 1] = [("Cookie", b"sid=abc; theme=dark")];
    let r = req("flag&_charset_=utf-7&a=b", &h, b"");
    let x = extract(&r, &Limits::default());
    // `flag`, the names `_charset_`, `a`, `sid`, `theme`, the values `b`,
    // `abc`, `dark`.
    assert_eq!(x.skipped, 8, "{:?}", x.list);
    // A `_charset_` value re-decodes the body: listed though plain.
    assert!(x.list.iter().any(|f| &f.value[..] == b"utf-7"));
    assert!(f.contains(&("header:user-agent".into(), "x".into())));
    assert!(f.contains(&("path".into(), "/p".into())));
}

#[test]
fn json_paths_and_escapes() {
    let h: [(&str, &[u8]); 1] = [("Content-Type", b"application/json")];
    let body = br#"{"user":{"name":"a\u003cb","tags":["x y",1]},"o k":true}"#;
    let f = fields(&req("", &h, body));
    assert!(f.contains(&("json:$.user.name".into(), "a<b".into())));
    assert!(f.contains(&("json:$.user.tags[0]".into(), "x y".into())));
    assert!(f.contains(&("json:$.o k".into(), "o k".into())));
    // Plain tokens (numbers, ids, plain keys) are not even turned into fields.
    assert!(!f
        .iter()
        .any(|(t, _)| t == "json:$.user.tags[1]" || t == "json:$.user"));
}

#[test]
fn bad_json_is_inspected_raw() {
    let h: [(&str, &[u8]); 1] = [("Content-Type", b"application/json")];
    let f = fields(&req("", &h, b"{\"a\": 1 OR 1=1"));
    assert!(f.iter().any(|(t, v)| t == "body" && v.contains("OR 1=1")));
}

#[test]
fn deep_json_is_cut_and_flagged() {
    let body = "[".repeat(100) + &"]".repeat(100);
    let h: [(&str, &[u8]); 1] = [("Content-Type", b"application/json")];
    let r = req("", &h, body.as_bytes());
    assert!(extract(&r, &Limits::default()).truncated);
}

#[test]
fn multipart_fields_and_filenames() {
    let h: [(&str, &[u8]); 1] = [("Content-Type", b"multipart/form-data; boundary=XX")];
    let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello there\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../x.php\"\r\n\r\n<?php ?>\r\n--XX--\r\n";
    let f = fields(&req("", &h, body));
    assert!(f.contains(&("multipart:a".into(), "hello there".into())));
    assert!(f.contains(&("filename:f".into(), "../x.php".into())));
    // The plain names `a` and `f` count against the field limit, as the
    // same names in a query do; a name with punctuation is listed.
    let r = req("", &h, body);
    let x = extract(&r, &Limits::default());
    let q = extract(
        &req("a=hello+there&f=%3C%3Fphp", &[], b""),
        &Limits::default(),
    );
    assert_eq!((x.skipped, q.skipped), (2, 2), "{:?}", x.list);
    let body =
        b"--XX\r\nContent-Disposition: form-data; name=\"a[b]\"\r\n\r\nhello there\r\n--XX--\r\n";
    let x = extract(&req("", &h, body), &Limits::default());
    assert!(x
        .list
        .iter()
        .any(|f| f.class == Class::ArgName && &f.value[..] == b"a[b]"));
}

#[test]
fn xml_text_and_attributes() {
    let h: [(&str, &[u8]); 1] = [("Content-Type", b"text/xml")];
    let f = fields(&req("", &h, b"<a><b id=\"7 8\">hi there</b></a>"));
    assert!(f.contains(&("xml:/a/b".into(), "hi there".into())));
    assert!(f.contains(&("xml:/a/b@id".into(), "7 8".into())));
    assert!(f.iter().any(|(t, _)| t == "xml"));
}

#[test]
fn limits_cut_values_and_count() {
    let limits = Limits {
        max_value_bytes: 4,
        max_fields: 3,
        ..Limits::default()
    };
    let r = req("a=123456789&b=2&c=3", &[], b"");
    let f = extract(&r, &limits);
    assert!(f.truncated);
    // (The version is cut into windows, listed whole after them too.)
    assert_eq!(f.list.len() - f.wholes, 3);
    // Plain tokens count against the limit though they are not listed:
    // after the method, version and path, `a` and `1` fill it.
    let limits = Limits {
        max_fields: 5,
        ..Limits::default()
    };
    let f = extract(&req("a=1&c=%3C", &[], b""), &limits);
    assert!(f.truncated);
    assert_eq!((f.list.len(), f.skipped), (3, 2));
}

#[test]
fn long_values_are_inspected_whole_in_overlapping_windows() {
    let limits = Limits {
        max_value_bytes: 8,
        ..Limits::default()
    };
    let r = req("a=0123456789abcdefghij", &[], b"");
    let f = extract(&r, &limits);
    assert!(!f.truncated);
    let parts: Vec<(&[u8], bool, bool)> = f
        .list
        .iter()
        .filter(|x| x.class == Class::Arg)
        .map(|x| (&x.value[..], x.continued, x.whole))
        .collect();
    // Windows of 8 overlapping by 2: every byte is in one, every 2-byte
    // stretch lies whole in one. Then the value whole, for the SQL
    // detector alone, not counted against the field limit.
    assert_eq!(
        parts,
        [
            (&b"01234567"[..], false, false),
            (b"6789abcd", true, false),
            (b"cdefghij", true, false),
            (b"0123456789abcdefghij", false, true),
        ],
        "{parts:?}"
    );
    assert_eq!(f.wholes, 1);
    // The fields and the three windows just fill a field limit: the whole
    // value is still listed, and nothing is cut.
    let (listed, used) = (f.list.len(), f.list.len() - f.wholes + f.skipped);
    let limits = Limits {
        max_fields: used,
        ..limits
    };
    let f = extract(&r, &limits);
    assert_eq!((f.list.len(), f.wholes, f.truncated), (listed, 1, false));
}

#[test]
fn plain_token_is_the_three_token_shapes() {
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
    let reference = |v: &[u8]| {
        v.iter().all(|&b| word(b))
            || v.iter()
                .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b','))
            || (v.iter().all(|&b| word(b) || b == b'.') && v.iter().any(u8::is_ascii_digit))
    };
    let alphabet = b"aZ0_-.+,/ %\x00\xff";
    let mut v = Vec::new();
    for a in alphabet {
        for b in alphabet {
            for c in alphabet {
                for len in 0..=3 {
                    v.clear();
                    v.extend_from_slice(&[*a, *b, *c][..len]);
                    assert_eq!(plain_token(&v, None), reference(&v), "{v:?}");
                }
            }
        }
    }
}

#[test]
fn json_strings_end_at_the_first_quote_or_backslash() {
    // Every position of the closing quote relative to the 8-byte chunks,
    // with bytes that differ from '"' and '\' by one bit around it.
    for len in 0..20 {
        for (end, esc) in [(b'"', false), (b'\\', true)] {
            if len == 0 && !esc {
                continue; // an empty string is a plain token, not a field
            }
            let mut body = b"{\"k\":\"".to_vec();
            body.extend((0..len).map(|i| [b'!', b'#', b'c', b'Z', b']'][i % 5]));
            body.push(end);
            if esc {
                body.extend_from_slice(b"n<x\"");
            }
            body.extend_from_slice(b"}");
            let h: [(&str, &[u8]); 1] = [("Content-Type", b"application/json")];
            let f = fields(&req("", &h, &body));
            let (_, v) = f.iter().find(|(t, _)| t == "json:$.k").unwrap();
            assert_eq!(v.len(), len + usize::from(esc) * 3, "{body:?} -> {v:?}");
        }
    }
}

#[test]
fn include_like_names_are_config_and_include_variables() {
    for name in [
        "_CONF[path]",
        "conf",
        "mosConfig_absolute_path",
        "phpbb_root_path",
        "GLOBALS[x]",
        "include_file",
        "REQUIRE",
        "base_dir",
        "abspath",
        "conf_dir",
        "included_file",
    ] {
        assert!(include_like_name(name.as_bytes()), "{name}");
    }
    for name in [
        "",
        "q",
        "path",
        "retpath",
        "return_path",
        "page_url",
        "root_referer",
        "confirm",
        "conference",
    ] {
        assert!(!include_like_name(name.as_bytes()), "{name}");
    }
    // Query, form and multipart args carry the flag; JSON fields and
    // headers do not.
    let f = extract(
        &req("root_path=x/y&q=y/z", &[("Include", b"x")], b""),
        &Limits::default(),
    );
    let flagged: Vec<_> = f
        .list
        .iter()
        .filter(|x| x.include_like)
        .map(|x| x.name.as_ref())
        .collect();
    assert_eq!(flagged, ["root_path"]);
}

/// `dotted_path` (eight bytes at a time from eight bytes on) answers as
/// the two window scans it replaced: short values, and values long
/// enough for several words with patterns across every word boundary.
#[test]
fn dotted_path_matches_window_scans() {
    let reference = |v: &[u8]| {
        v.windows(2).any(|w| w == b"..")
            || v.windows(4).any(|w| {
                w[0] == b'0'
                    && (w[1] | 0x20) == b'x'
                    && matches!((w[2], w[3] | 0x20), (b'2', b'e' | b'f') | (b'5', b'c'))
            })
    };
    for v in seeded_strings(b"0x2e5cfF.X/a", 0x1234_5678_9abc_def1, 50_000, 9) {
        assert_eq!(super::dotted_path(&v), reference(&v), "{:?}", v);
    }
    // Longer values: mostly token bytes, the patterns' bytes rarer, so
    // both answers occur at every length up to 40.
    let mut x = 0x0d07_7ed0_0000_0001u64;
    let (mut yes, mut no) = (0, 0);
    for _ in 0..100_000 {
        let r = crate::test_support::xorshift(&mut x);
        let len = (r % 41) as usize;
        let v: Vec<u8> = (0..len)
            .map(|_| {
                let r = crate::test_support::xorshift(&mut x);
                match r % 16 {
                    0 => b'.',
                    1 => b'0',
                    2 => b"xX"[(r >> 8) as usize % 2],
                    3 => b"25"[(r >> 8) as usize % 2],
                    4 => b"eEfFcC"[(r >> 8) as usize % 6],
                    5 => [b'.' ^ 0x80, b'0' | 0x80, 0x7f, 0x00][(r >> 8) as usize % 4],
                    _ => b"aZ9-_1GA"[(r >> 8) as usize % 8],
                }
            })
            .collect();
        let want = reference(&v);
        assert_eq!(super::dotted_path(&v), want, "{:?}", v);
        if want {
            yes += 1
        } else {
            no += 1
        }
    }
    assert!(yes > 5_000 && no > 50_000, "{yes} / {no}");
}

/// `n` seeded strings over `alphabet`, shorter than `max_len`.
fn seeded_strings(alphabet: &[u8], seed: u64, n: usize, max_len: u64) -> Vec<Vec<u8>> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            let r = crate::test_support::xorshift(&mut x);
            (0..(r % max_len) as usize)
                .map(|i| alphabet[((r >> (i * 4)) % alphabet.len() as u64) as usize])
                .collect()
        })
        .collect()
}

/// `plain_token` reads `dotted_path` only for a token holding a dot or an
/// `x`: the same answers as reading it for every token with a digit.
#[test]
fn plain_token_skips_dotted_path_only_where_it_cannot_match() {
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
    let reference = |v: &[u8]| {
        if v == b"__proto__" || v == b"prototype" {
            return false;
        }
        let digit = v.iter().any(u8::is_ascii_digit);
        if v.iter().all(|&b| word(b)) && !(digit && super::dotted_path(v)) {
            let cases =
                v.iter().any(u8::is_ascii_uppercase) && v.iter().any(u8::is_ascii_lowercase);
            return !cases || !crate::transform::decodes_as_base64(v);
        }
        v.iter()
            .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b','))
            || (v.iter().all(|&b| word(b) || b == b'.') && digit && !super::dotted_path(v))
    };
    for v in seeded_strings(b"0x2e5cfF.X/a1_-", 0x0dd5_eed5_0000_0001, 100_000, 13) {
        assert_eq!(
            plain_token(&v, None),
            reference(&v),
            "{:?}",
            String::from_utf8_lossy(&v)
        );
    }
    for v in [
        "1..2",
        "0x2e0x2e0x2fetc",
        "a0X2Fb",
        "GA1.2.3",
        "v1.0.x",
        "0x2f",
    ] {
        assert_eq!(
            plain_token(v.as_bytes(), None),
            reference(v.as_bytes()),
            "{v}"
        );
    }
}

/// Dotted tokens read in one pass (`plain_dotted`: a dot-dot, an `0x`,
/// the dots a JOSE token test counts, eight bytes at a time) are plain
/// exactly as with `dotted_path` and the token test's own count: 200,000
/// seeded tokens up to 48 bytes over dots, `0x2e`-style spellings, JWT
/// heads and base64 of plain and odd claims, every word boundary. Fails
/// when a dot-dot or an `0x` across two words is not carried.
#[test]
fn dotted_tokens_read_in_one_pass_as_before() {
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
    let reference = |v: &[u8]| {
        if v == b"__proto__" || v == b"prototype" {
            return false;
        }
        let digit = v.iter().any(u8::is_ascii_digit);
        if v.iter().all(|&b| word(b)) && !(digit && super::dotted_path_bytewise(v)) {
            let mixed =
                v.iter().any(u8::is_ascii_uppercase) && v.iter().any(u8::is_ascii_lowercase);
            // Without rules' words, a long mixed-case word is read.
            return !mixed || (v.len() < ENCODED_OBJECT && !crate::transform::decodes_as_base64(v));
        }
        v.iter()
            .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b','))
            || (v.iter().all(|&b| word(b) || b == b'.')
                && digit
                && !super::dotted_path_bytewise(v)
                && !crate::transform::base64::jose_needs_reading(v))
    };
    let parts: [&str; 16] = [
        ".",
        "..",
        "0",
        "x",
        "X",
        "0x2e",
        "0X2F",
        "0x5c",
        "2e",
        "eyJ",
        "ew",
        "1",
        "a",
        "eyJ1c2VyIjoiYWxpY2UifQ",
        "eyJ1IjoiJyBvciAxPTEifQ",
        "ZmFrZQ",
    ];
    let mut x = 0x0d07_7ed0_0000_0001u64;
    let (mut plain, mut read, mut jose) = (0, 0, 0);
    for _ in 0..200_000 {
        let r = crate::test_support::xorshift(&mut x);
        let mut v = Vec::new();
        let mut k = r;
        while v.len() < (r % 49) as usize {
            k = crate::test_support::xorshift(&mut x);
            v.extend_from_slice(parts[(k % parts.len() as u64) as usize].as_bytes());
        }
        v.truncate((r % 49) as usize);
        if k.is_multiple_of(3) {
            v.splice(0..0, b"eyJhbGciOiJub25lIn0.".iter().copied());
        }
        let expect = reference(&v);
        assert_eq!(
            plain_token(&v, None),
            expect,
            "{}",
            String::from_utf8_lossy(&v)
        );
        if v.contains(&b'.') && v.iter().any(u8::is_ascii_digit) {
            plain += usize::from(expect);
            read += usize::from(!expect);
            jose += usize::from(crate::transform::base64::jose_needs_reading(&v));
        }
    }
    assert!(
        plain > 5000 && read > 5000 && jose > 500,
        "{plain} {read} {jose}"
    );
}

/// Header names come out in lower case, borrowed when they already are or
/// are common ones.
#[test]
fn header_names_are_lowered_without_allocating_when_common() {
    use std::borrow::Cow;
    for name in [
        "host",
        "user-agent",
        "accept",
        "accept-language",
        "accept-encoding",
        "referer",
        "content-type",
        "content-length",
        "origin",
        "connection",
        "cache-control",
        "pragma",
        "authorization",
        "sec-fetch-site",
        "sec-fetch-mode",
        "sec-fetch-dest",
        "sec-fetch-user",
        "sec-ch-ua",
        "sec-ch-ua-mobile",
        "sec-ch-ua-platform",
        "upgrade-insecure-requests",
        "x-requested-with",
        "x-forwarded-for",
        "if-none-match",
        "if-modified-since",
    ] {
        let upper = name.to_ascii_uppercase();
        let l = super::lower(&upper);
        assert!(matches!(l, Cow::Borrowed(_)), "{name}");
        assert_eq!(l, name);
        assert!(matches!(super::lower(name), Cow::Borrowed(n) if n == name));
    }
    assert_eq!(super::lower("X-Custom-Thing"), "x-custom-thing");
    assert_eq!(super::lower("x-custom"), "x-custom");
    // Any name, any case, any length (past the 32-byte buffer too): the
    // ASCII lower case, borrowed exactly when already lower case or common.
    let mut x = 0x10e4_e400_0000_0003u64;
    for _ in 0..100_000 {
        let r = crate::test_support::xorshift(&mut x);
        let len = (r % 40) as usize;
        let name: String = (0..len)
            .map(|_| {
                let r = crate::test_support::xorshift(&mut x);
                const BYTES: &[u8] = b"aZ-_Hs@[`{\x7f0A\xc3\xdaz";
                char::from(BYTES[(r % BYTES.len() as u64) as usize])
            })
            .collect();
        let l = super::lower(&name);
        assert_eq!(l, name.to_ascii_lowercase(), "{name:?}");
        assert_eq!(
            matches!(l, Cow::Borrowed(_)),
            name == name.to_ascii_lowercase(),
            "{name:?}"
        );
    }
}

/// The fields of a `GET /` with one header, but the request line's.
fn header_fields(name: &str, value: &[u8]) -> Vec<(String, String)> {
    let h: [(&str, &[u8]); 1] = [(name, value)];
    let r = Request {
        path: "/",
        ..req("", &h, b"")
    };
    fields(&r)
        .into_iter()
        .filter(|(t, _)| {
            !matches!(
                t.as_str(),
                "method" | "version" | "method_with_body" | "path"
            )
        })
        .collect()
}

/// `(target, value)` as `fields` lists them.
fn pair(t: &str, v: &str) -> (String, String) {
    (t.to_string(), v.to_string())
}

/// A cookie that strictly is a JSON document is listed as its keys and
/// strings (plain tokens counted, not listed), and as the value whole
/// unless every key and string is a plain token and the document holds no
/// SQL word or `-`; anything less strict is the value whole, as before.
#[test]
fn a_json_cookie_is_read_by_structure_only_when_strict() {
    let list = |cookie: &[u8]| header_fields("Cookie", cookie);
    // The typical consent cookie: every key and literal a plain token.
    assert_eq!(
        list(b"consent=%7B%22ads%22%3Afalse%2C%22stats%22%3Atrue%7D"),
        []
    );
    assert_eq!(
        list(br#"p={"a b":["x y",{"k\u0027":"v\"w"}],"n":-1.5e+3}"#),
        [
            pair("cookie:p$.a b", "a b"),
            pair("cookie:p$.a b", "a b"),
            pair("cookie:p$.a b[0]", "x y"),
            pair("cookie:p$.a b[1].k'", "k'"),
            pair("cookie:p$.a b[1].k'", "k'"),
            pair("cookie:p$.a b[1].k'", "v\"w"),
            // A key or string not a plain token: the value whole as well.
            pair(
                "cookie:p",
                r#"{"a b":["x y",{"k\u0027":"v\"w"}],"n":-1.5e+3}"#
            ),
        ]
    );
    // Plain tokens only, but a `-` (or an SQL word, asked of the engine's
    // SQL detector: `bypasses::json_cookie_break_outs…`): nothing listed by
    // structure, the value whole.
    for v in [r#"{"lang":"en-US"}"#, r#"["x","--"]"#] {
        let cookie = format!("p={v}");
        assert_eq!(list(cookie.as_bytes()), [pair("cookie:p", v)], "{v}");
    }
    // Not strict: read whole. A blank between tokens, text after the
    // document, a bad escape, a control byte, a stray `%`, a lenient
    // number or literal, a bare string, an unclosed document.
    let not_strict = [
        "%7B%22a%22%3A%20%22x%20y%22%7D",
        "%7B%22a%22%3A%22x%20y%22%7D%3Cscript%3E",
        r#"{"a":"x y\q"}"#,
        "%7B%22a%22%3A%22x%09y%22%7D",
        "%7B%22a%22%3A%22x%20y%%22%7D",
        r#"{"a":01,"b":"x y"}"#,
        r#"{"a":True,"b":"x y"}"#,
        r#""x y""#,
        r#"{"a":"x y""#,
    ];
    for v in not_strict {
        let cookie = format!("p={v}");
        assert_eq!(list(cookie.as_bytes()), [pair("cookie:p", v)], "{v}");
    }
    // Deeper than the depth limit: read whole.
    let deep = format!("p={}\"x y\"{}", "[".repeat(40), "]".repeat(40));
    assert_eq!(list(deep.as_bytes()), [pair("cookie:p", &deep[2..])]);
}

/// A Referer or Origin that strictly is an absolute http(s) URL is listed
/// as its path (for the header's rules and as a path) and its query's
/// arguments (names also as values); anything else is the value whole.
#[test]
fn a_referer_is_read_by_structure_only_when_a_strict_url() {
    let list = header_fields;
    assert_eq!(
        list(
            "Referer",
            b"https://shop.example.com/catalog/shoes?color=red&size=42"
        ),
        [
            pair("header:referer", "/catalog/shoes"),
            pair("referer-path", "/catalog/shoes"),
        ]
    );
    assert_eq!(list("Origin", b"https://shop.example.com"), []);
    assert_eq!(
        list("Referer", b"http://[::1]:8080/a%20b/c?x%27y=1&q=it%27s"),
        [
            pair("header:referer", "/a%20b/c"),
            pair("referer-path", "/a%20b/c"),
            pair("referer-path:1", "a b"),
            pair("referer-path:2", "c"),
            pair("referer-args:x'y", "x'y"),
            pair("referer-args:q", "it's"),
            pair("referer-args:(whole)", "x'y=1&q=it's"),
            pair("referer-args:x'y", "x'y"),
        ]
    );
    // Not strict: read whole.
    let not_strict = [
        "https://shop.example.com/a b",
        "https://shop.example.com/a?q=<b>",
        "https://shop.example.com/a#top",
        "https://user@shop.example.com/",
        "https://shop..example.com/",
        "https://shop.example.com:80a/",
        "https://shop.example.com/%zz",
        "https://shop.example.com/?a=%0d%0aFoo:bar",
        "https://shop.example.com/a%7f",
        "https://shop.example.com/?a=%250d%250a",
        "ftp://shop.example.com/",
        "//shop.example.com/",
        "null",
        "https://shop.example.com/caf\u{e9}",
    ];
    for v in not_strict {
        let whole = [pair("header:referer", v)];
        assert_eq!(list("Referer", v.as_bytes()), whole, "{v}");
    }
}

/// The whole `plain_token`, dotted tokens too, is the rules' own answer:
/// for seeded tokens of 16 bytes or more drawn from every byte a plain
/// token may hold (letters, digits, `_`, `-`, `.`), with fragments of the
/// rules' own literals spliced in, in lower case, upper case or as drawn,
/// a token `plain_token` would call plain without the rules
/// (`plain_token(v, None)`) stays plain exactly when no rule that targets
/// a token class matches it after the rule's own transform chain (its
/// regex, or one of its phrases, ASCII case ignored) — for the built-in
/// rules, with an operator's hex rules and with ones beyond hex. Fails when
/// case folding, the places after a `-` or `.`, a rule's cut or the
/// alphabet is wrong, or when a token shape is not asked.
#[test]
fn plain_tokens_are_read_exactly_when_a_rule_matches() {
    use crate::rules::{Operator, TargetSel};
    use crate::test_support::{xorshift, HEX_OPERATOR_RULES};
    use regex_syntax::hir::{Hir, HirKind};
    use std::borrow::Cow;
    let token_class = |t: &TargetSel| {
        matches!(
            t,
            TargetSel::Class(
                Class::Arg
                    | Class::ArgName
                    | Class::Cookie
                    | Class::CookieName
                    | Class::QueryArg
                    | Class::IncludeArg
            )
        )
    };
    /// Every literal of a pattern (its parts of two bytes or more).
    fn literals(h: &Hir, out: &mut Vec<Vec<u8>>) {
        match h.kind() {
            HirKind::Literal(l) if l.0.len() >= 2 => out.push(l.0.to_vec()),
            HirKind::Repetition(r) => literals(&r.sub, out),
            HirKind::Capture(c) => literals(&c.sub, out),
            HirKind::Concat(hs) | HirKind::Alternation(hs) => {
                hs.iter().for_each(|h| literals(h, out));
            }
            _ => {}
        }
    }
    let token_byte = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let alphabet: Vec<u8> = (0..=255u8).filter(token_byte).collect();
    let rule_sets: [&[(&str, &str)]; 3] = [
        &[],
        &[("ops.toml", HEX_OPERATOR_RULES)],
        &[
            ("ops.toml", HEX_OPERATOR_RULES),
            ("wide.toml", crate::test_support::WIDE_OPERATOR_RULES),
        ],
    ];
    for (n, extra) in rule_sets.into_iter().enumerate() {
        let mut texts = crate::rules::builtin_texts();
        for (name, text) in extra {
            texts.push((name.to_string(), Cow::Owned(text.to_string())));
        }
        let mut fragments: Vec<Vec<u8>> = ["-", "_", ".", "--", "1.", "v1.", "x."]
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect();
        let readers: Vec<_> = crate::rules::parse_all(&texts)
            .unwrap()
            .into_iter()
            .filter(|r| r.targets.iter().any(token_class))
            .filter_map(|r| match r.op {
                Operator::Regex(p) => {
                    let hir = regex_syntax::ParserBuilder::new()
                        .unicode(false)
                        .utf8(false)
                        .build()
                        .parse(&p)
                        .unwrap();
                    literals(&hir, &mut fragments);
                    Some((r.transforms, Ok(crate::syntax::single_regex(&p).unwrap())))
                }
                Operator::Phrases(list) => {
                    fragments.extend(list.iter().map(|p| p.as_bytes().to_vec()));
                    Some((r.transforms, Err(list)))
                }
                Operator::Detector(_) => None,
            })
            .collect();
        // Only what a token can hold: the rules' literals of word bytes
        // and dots (`msysaccessobjects`, `invoke-`, `aced0005`, `java.lang`).
        fragments.retain(|f| f.iter().all(token_byte));
        fragments.sort();
        fragments.dedup();
        let reference = |w: &[u8]| {
            readers.iter().any(|(chain, m)| {
                let v = crate::transform::apply_chain(chain, w);
                match m {
                    Ok(re) => re.is_match(&*v),
                    Err(list) => list.iter().any(|p| {
                        v.windows(p.len())
                            .any(|x| x.eq_ignore_ascii_case(p.as_bytes()))
                    }),
                }
            })
        };
        let rs = crate::engine::RuleSet::builtin_and(extra).unwrap();
        let words = rs.encoded_words();
        let mut x = 0x5eed_0e4c_0d3d_0001u64 + n as u64;
        // Tokens read: dotted, single-case beyond a–f, upper case.
        let (mut read, mut dotted_read, mut beyond_hex_read, mut upper_read, mut plain) =
            (0, 0, 0, 0, 0);
        for _ in 0..40_000 {
            let r = xorshift(&mut x);
            let len = 16 + (r % 40) as usize;
            let mut w = Vec::new();
            while w.len() < len {
                let r = xorshift(&mut x);
                if r.is_multiple_of(5) {
                    w.extend_from_slice(&fragments[(r >> 8) as usize % fragments.len()]);
                } else if r.is_multiple_of(3) {
                    // Hex digits: the common session id and stream.
                    w.push(b"0123456789abcdef"[(r >> 8) as usize % 16]);
                } else {
                    w.push(alphabet[(r >> 8) as usize % alphabet.len()]);
                }
            }
            match (r >> 40) % 3 {
                0 => w.make_ascii_lowercase(),
                1 => w.make_ascii_uppercase(),
                _ => {}
            }
            if !plain_token(&w, None) {
                continue;
            }
            let expect = reference(&w);
            assert_eq!(
                plain_token(&w, words),
                !expect,
                "{}",
                String::from_utf8_lossy(&w)
            );
            if expect {
                read += 1;
                dotted_read += usize::from(w.contains(&b'.'));
                upper_read += usize::from(w.iter().any(u8::is_ascii_uppercase));
                // A word (no dot) with letters beyond a–f.
                beyond_hex_read += usize::from(
                    !w.contains(&b'.')
                        && w.iter()
                            .any(|b| matches!(b.to_ascii_lowercase(), b'g'..=b'z')),
                );
            } else {
                plain += 1;
            }
        }
        assert!(
            read > 500
                && plain > 10_000
                && dotted_read > 300
                && upper_read > 200
                && beyond_hex_read > 30,
            "{read} {plain} {dotted_read} {upper_read} {beyond_hex_read}"
        );
    }
}

/// The built-in rules that can match inside a long plain token (their
/// cut to the token alphabet keeps a branch): PowerShell and SQL names,
/// Java and Python streams, dotted class and host names…
const BUILTIN_READERS: [u32; 25] = [
    1002, 1004, 1005, 1011, 2005, 3009, 3010, 3011, 3015, 3016, 3023, 3037, 4002, 4003, 4004, 4005,
    4006, 4007, 4008, 7002, 7003, 7004, 7005, 8001, 9002,
];

/// What the rules read of long plain tokens is derived from the loaded
/// rules: the built-in ones that can match inside such a token
/// (`BUILTIN_READERS`); an operator's file adds its own rules.
#[test]
fn encoded_words_come_from_the_loaded_rules() {
    let rs = crate::engine::RuleSet::builtin().unwrap();
    let builtin = rs.encoded_words().unwrap().rules().to_vec();
    assert_eq!(builtin, BUILTIN_READERS);
    let ops = [("ops.toml", crate::test_support::HEX_OPERATOR_RULES)];
    let rs = crate::engine::RuleSet::builtin_and(&ops).unwrap();
    let ids = rs.encoded_words().unwrap().rules();
    let mut expect = BUILTIN_READERS.to_vec();
    expect.extend([90001, 90002, 90003, 90004, 90005]);
    assert_eq!(ids, expect);
}

/// A 32-hex JSESSIONID and a 64-hex hash in the query stay on the cheap
/// path under the built-in rules (counted as plain tokens, no field
/// built); an operator's rule that can match 32 hex digits makes them read.
#[test]
fn hex_session_ids_stay_plain_unless_a_rule_reads_them() {
    let h: [(&str, &[u8]); 1] = [(
        "Cookie",
        b"theme=dark; JSESSIONID=3f9a1c2b7d8e4f60a1b2c3d4e5f60718",
    )];
    let q = "h=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let r = req(q, &h, b"");
    let limits = Limits::default();
    let rs = crate::engine::RuleSet::builtin().unwrap();
    let f = extract_into(&r, &limits, Vec::new(), |_| false, rs.encoded_words());
    let listed = |f: &Fields<'_>| {
        f.list
            .iter()
            .filter(|x| matches!(x.class, Class::Cookie | Class::Arg))
            .count()
    };
    assert_eq!((listed(&f), f.skipped), (0, 6));
    let any32 = r#"
family = "java"
[[rule]]
id = 90100
message = "32 hex digits"
severity = "critical"
targets = ["args", "cookies"]
regex = '[0-9a-f]{32}'
"#;
    let rs = crate::engine::RuleSet::builtin_and(&[("ops.toml", any32)]).unwrap();
    let f = extract_into(&r, &limits, Vec::new(), |_| false, rs.encoded_words());
    assert_eq!((listed(&f), f.skipped), (2, 4));
}

/// Session ids, hashes and dash-less UUIDs of hex digits stay plain; a hex
/// Java stream, in either case, whole or after a `-`, is read.
#[test]
fn hex_words_are_plain_unless_a_stream() {
    let rs = crate::engine::RuleSet::builtin().unwrap();
    let words = rs.encoded_words();
    for v in [
        "3f9a1c2b7d8e4f60a1b2c3d4e5f60718",
        "A1B2C3D4E5F60718293A4B5C6D7E8F90",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "aced0005",
        "aced00057372",
        "order-3f9a1c2b7d8e4f60a1b2c3d4",
        "x-aced-1f2c9e8d7b6a5c4d3e",
        // A stream header but no type code after it: 7002 reads none.
        "aced00051f2c9e8d7b6a5c4d3e2f10a9b8c7d6e5",
    ] {
        assert!(plain_token(v.as_bytes(), words), "{v}");
    }
    for v in [
        "aced0005737200176a6176612e7574696c2e5072696f72697479517565756594da30b4fb3f82b1",
        "ACED00057372001A6A6176612E7574696C2E48617368536574BA44859596B8B734",
        "0-aced00057372001a6a6176612e7574696c2e48617368536574",
        "Order-ACED00057372001A6A6176612E7574",
    ] {
        assert!(!plain_token(v.as_bytes(), words), "{v}");
    }
}
