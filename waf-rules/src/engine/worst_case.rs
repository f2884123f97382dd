//! Linear time on the inputs that would expose anything worse: long runs
//! of every byte a decoder, a detector or a gate starts from, deep JSON
//! nesting, huge keys and names, many short fields — in a query value, a
//! form, a JSON string, a cookie and a header, at paranoia 4 (every rule).
//!
//! Each input is inspected at two sizes, n and 4n. Linear work grows 4×,
//! quadratic 16×; the test fails when the larger one takes more than 10×
//! the smaller *and* more than a second (so scheduling noise on a shared
//! machine cannot fail it: a small input inspected in a few milliseconds
//! would have to stall for a whole second), and when any inspection takes
//! more than a generous deadline (60 s, unoptimised build).

use super::RuleSet;
use crate::policy::Policy;
use crate::request::Request;
use std::time::{Duration, Instant};

/// Bytes that start a decoding step, open a gate or are read by a
/// detector's grammar, and a letter and a digit for contrast.
const TRIGGERS: &[u8] = b"'\"()=<>;#-/*|&@`$%{}[]\\.:,+!? \t\n\r\0^~a7";

/// Multi-byte units whose repetition drives decoders and readers.
const UNITS: &[&str] = &[
    "%25",
    "%u0041",
    "%c0%af",
    "&#x41;",
    "&lt;",
    "\\x41",
    "\\u0041",
    "${",
    "${IFS}",
    "$((",
    "/*!",
    "*/",
    "--",
    "../",
    "..\\",
    "0x2e",
    "<a ",
    "<svg ",
    "<x on",
    "=\"",
    "'\"`",
    "/*",
    "&#",
    "&#x",
    "j\ta\tv\ta\ts\tc\tr\ti\tp\tt:",
    "color:url(",
    "a=alert,",
    "setTimeout((",
    "<!--#",
    "union select ",
    "' or ",
    "or 1=1 ",
    "() { :; }; ",
    "${jndi:",
    "${${::-j}",
    ";ls ",
    "|id ",
    "`id`",
    "$(id)",
    "javascript:",
    "on",
    "ab ",
    "é",
    "\u{ff0f}",
    // Long words of hex digits and dashes (`EncodedWords`).
    "0-",
    "aced0005-",
    "aced00057",
];

fn inspect_time(rules: &RuleSet, req: &Request<'_>, p: &Policy) -> Duration {
    let t = Instant::now();
    std::hint::black_box(rules.inspect(req, p));
    t.elapsed()
}

/// The request carrying `unit` repeated `n` times in `place`.
fn request_with(place: &str, unit: &str, n: usize, buf: &mut Vec<u8>, hbuf: &mut Vec<u8>) -> Place {
    let run = unit.repeat(n);
    buf.clear();
    hbuf.clear();
    match place {
        "query" => buf.extend_from_slice(format!("q={run}&x=1").as_bytes()),
        "form" => buf.extend_from_slice(format!("a={run}").as_bytes()),
        "json" => {
            let escaped = run.replace('\\', "\\\\").replace('"', "\\\"");
            let escaped = escaped
                .replace('\n', "\\n")
                .replace('\r', "\\r")
                .replace('\t', "\\t")
                .replace('\0', "\\u0000");
            buf.extend_from_slice(format!("{{\"k\":\"{escaped}\"}}").as_bytes());
        }
        "cookie" => hbuf.extend_from_slice(format!("s={run}").as_bytes()),
        // A cookie read as JSON by structure: the run in a key and a
        // string, percent-encoded.
        "json-cookie" => {
            let s = serde_json::to_string(&run).unwrap_or_default();
            let doc = format!("{{{s}:[{s},1]}}");
            hbuf.extend_from_slice(format!("s={}", percent_encode(&doc)).as_bytes());
        }
        // A Referer read as a URL by structure: the run in the path and
        // in a query name and value, percent-encoded.
        "referer-url" => {
            let e = percent_encode(&run);
            hbuf.extend_from_slice(format!("https://a.example/{e}/x?{e}={e}").as_bytes());
        }
        _ => hbuf.extend_from_slice(run.as_bytes()),
    }
    match place {
        "query" => Place::Query,
        "form" => Place::Form,
        "json" => Place::Json,
        "cookie" | "json-cookie" => Place::Cookie,
        _ => Place::Header,
    }
}

/// Every byte but letters and digits as `%XX`.
fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Place {
    Query,
    Form,
    Json,
    Cookie,
    Header,
    /// A body given as is (structure tests).
    Body,
}

fn build<'a>(
    place: Place,
    buf: &'a [u8],
    hbuf: &'a [u8],
    headers: &'a mut Vec<(&'static str, &'a [u8])>,
) -> Request<'a> {
    headers.clear();
    let (query, body): (&[u8], &[u8]) = match place {
        Place::Query => (buf, b""),
        Place::Form => {
            headers.push(("Content-Type", b"application/x-www-form-urlencoded"));
            (b"", buf)
        }
        Place::Json | Place::Body => {
            headers.push(("Content-Type", b"application/json"));
            (b"", buf)
        }
        Place::Cookie => {
            headers.push(("Cookie", hbuf));
            (b"", b"")
        }
        Place::Header => {
            headers.push(("User-Agent", hbuf));
            headers.push(("Referer", hbuf));
            (b"", b"")
        }
    };
    Request {
        method: "POST",
        path: "/p",
        query: std::str::from_utf8(query).unwrap_or(""),
        headers,
        body,
        body_truncated: false,
        version: "HTTP/1.1",
    }
}

/// Notes a failure when 4n costs far more than 4× n (see the module doc).
fn check_linear(what: &str, small: Duration, large: Duration, failures: &mut Vec<String>) {
    let deadline = Duration::from_secs(60);
    if large >= deadline {
        failures.push(format!("{what}: {large:?} (deadline {deadline:?})"));
    } else if large >= small * 10 && large >= Duration::from_secs(1) {
        failures.push(format!(
            "{what}: 4x the input took {large:?} against {small:?}: worse than linear"
        ));
    }
}

#[test]
fn runs_of_every_trigger_byte_and_unit_stay_linear() {
    let units: Vec<String> = TRIGGERS
        .iter()
        .map(|&b| char::from(b).to_string())
        .chain(UNITS.iter().map(|u| u.to_string()))
        .collect();
    runs_stay_linear(&units);
}

fn runs_stay_linear(units: &[String]) {
    let rules = RuleSet::builtin().unwrap();
    // Paranoia 4 runs every rule (those of level 1 among them).
    let policies = [Policy {
        paranoia: 4,
        ..Policy::default()
    }];
    let (mut buf, mut hbuf) = (Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for unit in units {
        // About 6 and 24 KiB in a body field or the query (past one 16 KiB
        // window), 2 and 8 KiB in a header.
        for place in [
            "query",
            "form",
            "json",
            "cookie",
            "header",
            "json-cookie",
            "referer-url",
        ] {
            let bytes = if matches!(place, "cookie" | "header" | "json-cookie" | "referer-url") {
                2048
            } else {
                6 << 10
            };
            let n = (bytes / unit.len()).max(1);
            for p in &policies {
                let mut t = [Duration::ZERO; 2];
                for (k, n) in [n, 4 * n].into_iter().enumerate() {
                    let place = request_with(place, unit, n, &mut buf, &mut hbuf);
                    let mut headers = Vec::new();
                    let req = build(place, &buf, &hbuf, &mut headers);
                    t[k] = inspect_time(&rules, &req, p);
                }
                let what = format!("{unit:?} in {place}, paranoia {}", p.paranoia);
                check_linear(&what, t[0], t[1], &mut failures);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn deep_nesting_huge_keys_and_many_fields_stay_linear() {
    let rules = RuleSet::builtin().unwrap();
    let p = Policy::default();
    type Shape = fn(usize) -> (Place, String);
    let shapes: &[(&str, Shape)] = &[
        ("nested arrays", |n| (Place::Body, "[".repeat(n))),
        ("nested objects", |n| (Place::Body, "{\"a\":".repeat(n))),
        ("closed nesting", |n| {
            (
                Place::Body,
                format!("{}1{}", "[".repeat(n / 2), "]".repeat(n / 2)),
            )
        }),
        ("huge key", |n| {
            (Place::Body, format!("{{\"{}\":1}}", "k'".repeat(n)))
        }),
        ("many short JSON leaves", |n| {
            (Place::Body, format!("[{}1]", "\"a'\",".repeat(n)))
        }),
        ("many short query fields", |n| {
            (Place::Query, "a'=b<&".repeat(n))
        }),
        ("huge query name", |n| {
            (Place::Query, format!("{}=1", "n(".repeat(n)))
        }),
        ("many form fields", |n| (Place::Form, "x=%27&".repeat(n))),
        ("many cookies", |n| (Place::Cookie, "a=';".repeat(n / 8))),
        // A cookie read as JSON by structure: a huge key over many short
        // strings (each field's label is cut, not the key copied per
        // field), deep nesting, many keys.
        ("JSON cookie: huge key over many strings", |n| {
            let doc = format!(
                "{{\"{}\":[{}1]}}",
                "k'".repeat(n / 4),
                "\"a'\",".repeat(n / 4)
            );
            (Place::Cookie, format!("c={}", percent_encode(&doc)))
        }),
        ("JSON cookie: nested", |n| {
            let doc = format!("{}\"a'\"{}", "[".repeat(n / 8), "]".repeat(n / 8));
            (Place::Cookie, format!("c={}", percent_encode(&doc)))
        }),
        ("JSON cookie: many keys", |n| {
            let doc = format!("{{{}\"z\":1}}", "\"k'\":\"v'\",".repeat(n / 8));
            (Place::Cookie, format!("c={doc}"))
        }),
        // A long value the SQL detector reads whole (`Field::whole`),
        // with quotes it must scan past (about 40 and 160 KB).
        ("long value read whole", |n| {
            (
                Place::Form,
                format!("c={}admin'--", "it''s+a+word+".repeat(n / 2)),
            )
        }),
        ("long JSON value read whole", |n| {
            (
                Place::Body,
                format!(
                    "{{\"c\":\"{}' or '1'='1\"}}",
                    "it''s a (word) ".repeat(n / 2)
                ),
            )
        }),
    ];
    let mut hbuf = Vec::new();
    let mut failures = Vec::new();
    for (what, shape) in shapes {
        let mut t = [Duration::ZERO; 2];
        for (k, n) in [6_000usize, 24_000].into_iter().enumerate() {
            let (place, text) = shape(n);
            let buf = text.into_bytes();
            hbuf.clear();
            if matches!(place, Place::Cookie) {
                hbuf.extend_from_slice(&buf);
            }
            let mut headers = Vec::new();
            let req = build(place, &buf, &hbuf, &mut headers);
            t[k] = inspect_time(&rules, &req, &p);
        }
        check_linear(what, t[0], t[1], &mut failures);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Seeded random mixes of the trigger bytes and the units (decoders,
/// gates and detectors meeting each other's inputs), each mix repeated
/// to ≈ 6 and 24 KiB in a query value and a JSON string, at paranoia 4.
#[test]
fn seeded_random_mixes_of_triggers_and_units_stay_linear() {
    let rules = RuleSet::builtin().unwrap();
    let p = Policy {
        paranoia: 4,
        ..Policy::default()
    };
    let (mut buf, mut hbuf) = (Vec::new(), Vec::new());
    let mut failures = Vec::new();
    let mut x: u64 = 0x6a09_e667_f3bc_c908;
    for seed in 0..6 {
        let mut mix = String::new();
        while mix.len() < 1536 {
            let r = crate::test_support::xorshift(&mut x);
            if r.is_multiple_of(2) {
                mix.push_str(UNITS[(r >> 8) as usize % UNITS.len()]);
            } else {
                mix.push(char::from(TRIGGERS[(r >> 8) as usize % TRIGGERS.len()]));
            }
        }
        for place in ["query", "json"] {
            let mut t = [Duration::ZERO; 2];
            for (k, n) in [4, 16].into_iter().enumerate() {
                let place = request_with(place, &mix, n, &mut buf, &mut hbuf);
                let mut headers = Vec::new();
                let req = build(place, &buf, &hbuf, &mut headers);
                t[k] = inspect_time(&rules, &req, &p);
            }
            let head: String = mix.chars().take(40).collect();
            let what = format!("mix {seed} ({head:?}…) in {place}");
            check_linear(&what, t[0], t[1], &mut failures);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
