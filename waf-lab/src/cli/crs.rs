//! CRS regression tests (go-ftw YAML) as corpus items.

use super::corpus::{hash, percent_decode, Item, Label};
use super::heldout::ORDINARY_HEADERS;
use super::owned::OwnedRequest;
use base64::Engine;
use serde_yaml::Value;
use std::path::Path;

/// CRS rule-id prefix to our family name.
pub fn family_of(rule_id: u64) -> &'static str {
    match rule_id / 1000 {
        911 | 920 | 921 | 922 => "protocol",
        913 => "scanner",
        930 => "lfi",
        931 => "rfi",
        932 => "rce",
        933 => "php",
        934 => "generic",
        941 => "xss",
        942 => "sqli",
        943 => "session-fixation",
        944 => "java",
        _ => "other",
    }
}

/// The paranoia level CRS gives a rule (its `paranoia-level/N` tag), from a table
/// generated from the CRS 3.3.4 rule files; rules new in v4 count as level 1.
///
/// A test of a level 2-4 rule documents a string CRS itself only flags when an
/// operator asks for more sensitivity than the default, i.e. one its authors do
/// not treat as an attack on its own (`SUBSTR(`, a numeric Host, a lone keyword):
/// such tests are excluded from the standalone column, like a lone `'`.
pub fn paranoia_level(rule_id: u64) -> u8 {
    rule_table(include_str!("crs_paranoia.txt"), rule_id)
        .and_then(|pl| pl.trim().parse().ok())
        .unwrap_or(1)
}

/// The rest of the line of `rule_id` in a `ID VALUE` table (`#` comments).
fn rule_table(text: &str, rule_id: u64) -> Option<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .find(|(id, _)| id.parse() == Ok(rule_id))
        .map(|(_, rest)| rest)
}

/// Whether CRS scores the rule below its blocking threshold (severity WARNING
/// or NOTICE, from the CRS 3.3.4 rule files): CRS never blocks on such a
/// signal alone (an empty Accept, a numeric Host, `Connection: close,close`),
/// so a test of it is not an attack on its own, like a level 2-4 test.
pub fn below_blocking(rule_id: u64) -> bool {
    rule_table(include_str!("crs_severity.txt"), rule_id).is_some()
}

pub fn read_dir(
    dir: &Path,
    keep: &dyn Fn(u64) -> bool,
    f: &mut dyn FnMut(Item),
) -> Result<(), String> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let doc: Value = match serde_yaml::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("skipping {}: {e}", file.display());
                continue;
            }
        };
        let Some(tests) = doc.get("tests").and_then(Value::as_sequence) else {
            continue;
        };
        for t in tests {
            let tid = t.get("test_id").and_then(Value::as_u64).unwrap_or(0);
            let Some(stages) = t.get("stages").and_then(Value::as_sequence) else {
                continue;
            };
            for st in stages {
                let stage = st.get("stage").unwrap_or(st);
                let (Some(input), Some(output)) = (stage.get("input"), stage.get("output")) else {
                    continue;
                };
                let log = output.get("log").unwrap_or(output);
                let ids = |k: &str| -> Vec<u64> {
                    log.get(k)
                        .and_then(Value::as_sequence)
                        .map(|s| s.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default()
                };
                let (expect, no_expect) = (ids("expect_ids"), ids("no_expect_ids"));
                let label = match (expect.first(), no_expect.first()) {
                    (Some(id), _) => Label::Attack(family_of(*id).to_string()),
                    (None, Some(_)) => Label::CrsNegative,
                    _ => continue,
                };
                let rule = expect.first().or(no_expect.first()).copied().unwrap_or(0);
                let Some(request) = to_request(input) else {
                    continue;
                };
                // CRS documents its own expected false positives as tests
                // that expect a detection: they are not attacks.
                let desc = t
                    .get("desc")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let family = family_of(rule);
                // Spelled `false positive`, `false-positive`, `false-positve`; or the
                // test says it is "not a real attack".
                let documents_fp = desc.contains("false") && desc.contains("posit")
                    || desc.contains("false-positve")
                    || desc.contains("not a real attack");
                let name = format!(
                    "{}#{tid}",
                    file.file_name().and_then(|n| n.to_str()).unwrap_or("")
                );
                let standalone = !documents_fp
                    && paranoia_level(rule) <= 1
                    && !below_blocking(rule)
                    && !NOT_ATTACKS
                        .iter()
                        .chain(SIZE_LIMITS)
                        .any(|(id, _)| *id == rule)
                    && !STANDARD_VALUE_TESTS
                        .iter()
                        .chain(BENIGN_SHAPE_TESTS)
                        .any(|(t, _)| *t == name)
                    && (matches!(family, "protocol" | "scanner") || !lone_words(&request));
                let key = hash(name.as_bytes());
                if !keep(key) {
                    continue;
                }
                let group = format!("{}", rule / 1000);
                let show = format!(
                    "{name} {} {}?{} body={:?}",
                    request.method,
                    request.path,
                    request.query,
                    String::from_utf8_lossy(&request.body)
                        .chars()
                        .take(120)
                        .collect::<String>()
                );
                f(Item {
                    corpus: "crs".into(),
                    group,
                    label,
                    standalone,
                    request,
                    value: None,
                    source: file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("")
                        .to_string(),
                    show,
                });
            }
        }
    }
    Ok(())
}

/// CRS level-1 rules whose tests are not attacks on their own, with the reason.
const NOT_ATTACKS: &[(u64, &str)] = &[
    (
        943110,
        "a parameter named like a session id (`sessionid=`, `phpsessid=`) with a \
         foreign Referer: real browsing sends such parameters (legit-dev: 224 \
         requests with `sessionid=`); fixation needs the value to be set as a cookie",
    ),
    (
        920650,
        "an HTTP method override parameter (`_method=PUT`): Rails, Laravel and \
         Symfony forms send it routinely; what the overridden method does is \
         inspected like any other request",
    ),
    (
        920660,
        "one byte range in the legacy Request-Range header: the Apache range \
         attack needs many ranges, which rule 15006 catches",
    ),
    (
        943120,
        "a parameter named like a session id without a Referer: same as 943110",
    ),
];

/// CRS size-limit rules (argument name and value length, argument count and total size,
/// upload sizes). CRS applies them only when the operator sets the limit (crs-setup.conf
/// leaves every one commented out): size policy, not attack signatures; Rampart's sizes are
/// the proxy's and the engine's configured limits.
const SIZE_LIMITS: &[(u64, &str)] = &[
    (920360, "an argument name longer than 100 bytes"),
    (920370, "an argument value longer than 400 bytes"),
    (920380, "more than 255 arguments"),
    (920390, "more than 64,000 bytes of arguments in all"),
    (920400, "an uploaded file larger than 1 MiB"),
    (920410, "uploaded files larger than 1 MiB together"),
];

/// Level-1 tests of CRS *policy lists* (allowed methods, allowed content
/// types, restricted headers, a required Content-Type) whose request differs
/// from an ordinary one only by a standard value that real clients send,
/// with a harmless body. Other tests of the same rules (made-up methods and
/// media types, a GET with a body, an attack in the body) stay counted.
const STANDARD_VALUE_TESTS: &[(&str, &str)] = &[
    (
        "911100.yaml#6",
        "DELETE: a standard method (RFC 9110) every REST API uses",
    ),
    (
        "920420.yaml#18",
        "multipart/related (RFC 2387): MIME and upload APIs send it; body `foo`",
    ),
    (
        "920420.yaml#19",
        "application/cloudevents+json (CNCF CloudEvents): event webhooks",
    ),
    (
        "920420.yaml#20",
        "application/cloudevents-batch+json: the same, batched",
    ),
    (
        "920420.yaml#21",
        "application/csp-report: browsers send it for CSP violation reports",
    ),
    (
        "920420.yaml#22",
        "application/reports+json: browsers send it (Reporting API)",
    ),
    (
        "920450.yaml#7",
        "Content-Encoding: deflate on a GET without a body: a standard coding",
    ),
    (
        "920451.yaml#1",
        "Accept-Charset: UTF-8: a standard header older browsers send",
    ),
    (
        "920640.yaml#6",
        "a POST body without Content-Type (RFC 9110: SHOULD, not MUST; \
         legit-dev has 100 such POST/PUT requests); body `test_data`",
    ),
    ("920640.yaml#7", "the same, a plain XML document"),
    ("920640.yaml#8", "the same, a PUT of a plain JSON object"),
    ("920640.yaml#10", "the same, a PATCH of a plain JSON patch"),
];

/// Level-1 tests whose whole payload has the shape of what real browsers send, so that
/// flagging it would block real users: the request is not an attack on its own.
const BENIGN_SHAPE_TESTS: &[(&str, &str)] = &[
    (
        "931120.yaml#1",
        "`x=file?`: a scheme word and a question mark, no host and no resource to include",
    ),
    ("931120.yaml#2", "`x=ftp?`: the same"),
    ("931120.yaml#3", "`x=ftps?`: the same"),
    ("931120.yaml#4", "`x=http?`: the same"),
    ("931120.yaml#5", "`x=https?`: the same"),
    (
        "931120.yaml#6",
        "`x=https://foo.bar?`: a host-only URL with an empty query, the shape real browsing \
         sends (legit-dev: 4 x `continue=https://home.atlassian.com?`); an inclusion needs a \
         resource path before the `?` (`http://evil.example/shell.txt?`), which rule 5002 flags",
    ),
];

/// True when everything the test puts in the request (path segments, query and
/// body names and values, cookies, its own headers) is a bare word: letters,
/// digits, `.`, `_`, `-`, starting with a letter or digit, no `..`, at most
/// followed by an empty pair of parentheses; or a fragment with fewer than
/// three letters or digits. A class name
/// (`java.lang.Runtime`), a database name or a function name alone has no
/// syntax that could inject or execute anything: such a test checks a CRS
/// keyword list, it is not an attack on its own.
pub fn lone_words(r: &OwnedRequest) -> bool {
    fn word(s: &str) -> bool {
        let d = percent_decode(s);
        // A short fragment with fewer than three letters or digits (`~+`,
        // `!-1`, `-->`, `'!'`, at most 8 bytes) is a probe piece, the same
        // rule as for the value corpora: harmless in almost every parameter
        // on its own. Longer ones (JSFuck, `$__[$_[1]](7)`) stay attacks.
        if d.bytes().filter(u8::is_ascii_alphanumeric).count() < 3 && d.trim().len() <= 8 {
            return true;
        }
        // `concat_ws(`, `RAND (`, `print_r( )`: a function name opened but
        // never called with anything is still a lone keyword.
        let d = d.trim_end();
        let d = d.strip_suffix(')').map_or(d, str::trim_end);
        let d = d.strip_suffix('(').unwrap_or(d).trim_end();
        d.is_empty()
            || (d.as_bytes()[0].is_ascii_alphanumeric()
                && !d.contains("..")
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
    }
    let pairs = |s: &str, sep: char| -> bool {
        s.split(sep)
            .flat_map(|p| p.splitn(2, '='))
            .all(|w| word(w.trim()))
    };
    r.path.split('/').all(word)
        && pairs(&r.query, '&')
        && body_words(&String::from_utf8_lossy(&r.body), &word, &pairs)
        && r.headers.iter().all(|(n, v)| {
            let n = n.to_ascii_lowercase();
            let v = String::from_utf8_lossy(v);
            n == "user-agent"
                || ORDINARY_HEADERS.contains(&n.as_str())
                || (n == "cookie" && pairs(&v, ';'))
                || (word(&n) && word(v.trim()))
        })
}

/// The body's names and values are bare words: a form, a JSON document (keys and
/// string leaves) or XML (text and attribute values; the markup is structure).
fn body_words(body: &str, word: &dyn Fn(&str) -> bool, pairs: &dyn Fn(&str, char) -> bool) -> bool {
    let t = body.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return serde_json::from_str::<serde_json::Value>(t).is_ok_and(|v| json_words(&v, word));
    }
    if let Some(rest) = t.strip_prefix("<?xml") {
        let Some((_, doc)) = rest.split_once("?>") else {
            return false;
        };
        let mut ok = true;
        for chunk in doc.split('<').skip(1) {
            let Some((tag, text)) = chunk.split_once('>') else {
                return false;
            };
            let quoted = tag.split('"').skip(1).step_by(2);
            let unquoted: String = tag.split('"').step_by(2).collect();
            ok &= word(text.trim())
                && quoted.into_iter().all(word)
                && unquoted
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b" =/_-".contains(&b));
        }
        return ok;
    }
    pairs(body, '&')
}

fn json_words(v: &serde_json::Value, word: &dyn Fn(&str) -> bool) -> bool {
    match v {
        serde_json::Value::String(s) => word(s),
        serde_json::Value::Array(a) => a.iter().all(|x| json_words(x, word)),
        serde_json::Value::Object(o) => o.iter().all(|(k, x)| word(k) && json_words(x, word)),
        _ => true,
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.is_dir() {
            // Response-phase tests need a response body: not ours.
            if !p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("RESPONSE"))
            {
                collect(&p, out)?;
            }
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

fn to_request(input: &Value) -> Option<OwnedRequest> {
    if let Some(enc) = input.get("encoded_request").and_then(Value::as_str) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(enc.trim())
            .ok()?;
        return parse_raw(&raw);
    }
    let mut r = OwnedRequest {
        method: input
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_string(),
        ..Default::default()
    };
    r.set_uri(input.get("uri").and_then(Value::as_str).unwrap_or("/"));
    // go-ftw sends HTTP/1.1 unless the test names a version; an empty one
    // is a request line without a version, which servers read as HTTP/0.9.
    r.version = match input.get("version").and_then(Value::as_str) {
        None => "HTTP/1.1".into(),
        Some("") => "HTTP/0.9".into(),
        Some(v) => v.to_string(),
    };
    if let Some(h) = input.get("headers").and_then(Value::as_mapping) {
        for (k, v) in h {
            let k = k.as_str().unwrap_or("").to_string();
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            r.headers.push((k, v.into_bytes()));
        }
    }
    r.body = match input.get("data") {
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(Value::Sequence(parts)) => parts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes(),
        _ => Vec::new(),
    };
    // A test that sets Content-Length itself sends bytes past it that the
    // server never reads as this request's body.
    let declared = r
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok());
    if let Some(n) = declared {
        r.body.truncate(n);
    }
    Some(r)
}

/// A whole raw HTTP/1 request.
fn parse_raw(raw: &[u8]) -> Option<OwnedRequest> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .or_else(|| {
            raw.windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| (p, p + 2))
        });
    let (head, body) = match split {
        Some((h, b)) => (&raw[..h], &raw[b..]),
        None => (raw, &b""[..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let mut r = OwnedRequest {
        method: first.next()?.to_string(),
        ..Default::default()
    };
    r.set_uri(first.next().unwrap_or("/"));
    r.version = first.next().unwrap_or("HTTP/0.9").trim().to_string();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            r.headers
                .push((k.trim().to_string(), v.trim().as_bytes().to_vec()));
        }
    }
    r.body = body.to_vec();
    Some(r)
}
