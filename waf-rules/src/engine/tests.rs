use super::*;
use crate::policy::{Exclusion, Policy};
use crate::request::Request;

fn rs() -> RuleSet {
    RuleSet::builtin().unwrap()
}

fn get<'a>(path: &'a str, query: &'a str, headers: &'a [(&'a str, &'a [u8])]) -> Request<'a> {
    Request {
        method: "GET",
        path,
        query,
        headers,
        body: b"",
        body_truncated: false,
        version: "HTTP/1.1",
    }
}

#[test]
fn benign_request_passes() {
    let h: [(&str, &[u8]); 3] = [
        ("Host", b"example.com"),
        ("User-Agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0 Safari/537.36"),
        ("Cookie", b"sid=abc123; prefs=%7B%22a%22%3A1%7D"),
    ];
    let v = rs().inspect(
        &get("/search", "q=red+shoes&page=2&sort=price", &h),
        &Policy::default(),
    );
    assert!(!v.block, "{v:?}");
    assert_eq!(v.score, 0);
}

#[test]
fn sqli_in_query_blocks_and_explains() {
    let v = rs().inspect(
        &get("/item", "id=1%27%20or%20%271%27%3D%271", &[]),
        &Policy::default(),
    );
    assert!(v.block);
    let m = v.matches.iter().find(|m| m.rule_id == 1001).unwrap();
    assert_eq!(m.target, "args:id");
    assert_eq!(m.family.to_string(), "sqli");
    assert!(m.fragment.contains("or"), "{m:?}");
}

#[test]
fn json_body_target_is_a_path() {
    let h: [(&str, &[u8]); 1] = [("Content-Type", b"application/json")];
    let req = Request {
        method: "POST",
        path: "/api",
        query: "",
        headers: &h,
        body: br#"{"user":{"bio":"<script>alert(1)</script>"}}"#,
        body_truncated: false,
        version: "HTTP/1.1",
    };
    let v = rs().inspect(&req, &Policy::default());
    assert!(v.block);
    assert!(
        v.matches.iter().any(|m| m.target == "json:$.user.bio"),
        "{v:?}"
    );
}

#[test]
fn exclusions_turn_rules_off_for_a_target_and_path() {
    let req = get("/admin/sql", "query=select+*+from+users+where+id%3D1", &[]);
    let p = Policy::default();
    assert!(rs().inspect(&req, &p).block);
    let p = Policy {
        exclusions: vec![Exclusion {
            rule_id: None,
            family: Some(crate::Family::Sqli),
            target: Some("args:query".into()),
            path_prefix: Some("/admin/".into()),
        }],
        ..Policy::default()
    };
    let v = rs().inspect(&req, &p);
    assert!(!v.block, "{v:?}");
}

#[test]
fn truncated_body_is_reported() {
    let req = Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &[],
        body: b"abc",
        body_truncated: true,
        version: "HTTP/1.1",
    };
    assert!(rs().inspect(&req, &Policy::default()).truncated);
}

#[test]
fn paranoia_gates_rules() {
    let req = get("/", "next=%2F%2Fevil.example.com%2F", &[]);
    assert!(!rs()
        .inspect(&req, &Policy::default())
        .matches
        .iter()
        .any(|m| m.rule_id == 12003));
    let p = Policy {
        paranoia: 2,
        ..Policy::default()
    };
    assert!(rs()
        .inspect(&req, &p)
        .matches
        .iter()
        .any(|m| m.rule_id == 12003));
}

#[test]
fn rule_set_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<RuleSet>();
}

#[test]
fn load_dir_reports_file_line_rule() {
    let e = load_file(
        "x.toml",
        "family = \"xss\"\n\n[[rule]]\nid = 77\nmessage = \"m\"\nseverity = \"critical\"\ntargets = [\"args\"]\nregex = '(unclosed'\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("x.toml:4: rule 77: bad regex"), "{e}");
}

/// A rule set loaded from a directory holding one rule file.
fn load_file(name: &str, toml: &str) -> Result<RuleSet, crate::WafError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), toml).unwrap();
    RuleSet::load_dir(dir.path())
}

#[test]
fn rule_sets_of_different_shapes_share_a_thread() {
    // Scratch buffers kept between inspections on a thread are resized
    // when the next inspection uses another rule set.
    let small = load_file(
        "one.toml",
        "family = \"sqli\"\n[[rule]]\nid = 1\nmessage = \"m\"\nseverity = \"critical\"\ntargets = [\"args\"]\ntransforms = [\"lowercase\"]\nregex = 'union\\s+select'\n",
    )
    .unwrap();
    let big = rs();
    let attack = get("/", "q=1%20UNION%20SELECT%20pw", &[]);
    for _ in 0..3 {
        let v = small.inspect(&attack, &Policy::default());
        assert_eq!(v.matches.len(), 1, "{v:?}");
        assert_eq!(v.matches[0].rule_id, 1);
        assert!(big.inspect(&attack, &Policy::default()).block);
        assert!(
            !small
                .inspect(&get("/", "q=hello", &[]), &Policy::default())
                .block
        );
    }
}

/// The engine does not call a detector that `needs_punctuation` on a
/// plain value (letters, digits, spaces, `_ , @ ! ?`): each must find
/// nothing there. Seeded random plain text plus prose and keywords.
#[test]
fn punctuation_detectors_find_nothing_in_plain_text() {
    use crate::detect::Detector;
    use crate::engine::prefilter::PLAIN_TEXT;
    let dets: Vec<Detector> = crate::detect::test_support::all()
        .into_iter()
        .filter(|d| d.needs_punctuation())
        .collect();
    assert!(dets.contains(&Detector::Xss) && dets.contains(&Detector::Shell));
    // The detectors' own idea of plain text (`needs_punctuation`) is the
    // engine's: a value the engine treats as plain never reaches them.
    for b in 0..=255u8 {
        assert_eq!(
            PLAIN_TEXT.contains(b),
            crate::detect::PLAIN_TEXT.contains(b),
            "plain text sets differ at {b:#04x}"
        );
    }
    let alphabet: Vec<u8> = (0..=255u8).filter(|&b| PLAIN_TEXT.contains(b)).collect();
    let mut values: Vec<Vec<u8>> = [
        "Please leave at the door, thanks!",
        "cat etc passwd and ls la",
        "alert 1 onerror javascript script img src",
        "jndi ldap evil com a x",
        "union select password from users where 1 1",
        "sleep 5 wget http evil sh bash i",
        "",
        "a",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let x = crate::test_support::xorshift(&mut x);
        let len = (x % 48) as usize;
        let v = (0..len)
            .map(|i| {
                let r = x.rotate_left(i as u32 * 5) ^ (i as u64).wrapping_mul(0x2545_f491);
                alphabet[(r % alphabet.len() as u64) as usize]
            })
            .collect();
        values.push(v);
    }
    for v in &values {
        assert!(v.iter().all(|&b| PLAIN_TEXT.contains(b)));
        for d in &dets {
            assert_eq!(
                d.detect(v),
                None,
                "{d:?} fired on plain text {:?}",
                String::from_utf8_lossy(v)
            );
        }
    }
}

/// Detectors told by the shared literal scan whether their anchors occur
/// (`Detector::anchors`) decide as they do on their own: the SQL
/// detector's keyword check through the engine and through its own
/// automaton, on values without SQL punctuation (the only ones it asks
/// about), in a query arg and in a JSON field.
#[test]
fn anchored_detectors_agree_with_their_own_check() {
    use crate::detect::Detector;
    let rs = rs();
    let values = [
        "1 union select password from users",
        "1 or true",
        "x is not null",
        "1 and sleep 5",
        "order by 3",
        "Please leave at the door, thanks!",
        "Trail running shoe, model 4",
        "union",
        "true",
        "a UNION b SELECT c",
    ];
    let h: [(&str, &[u8]); 1] = [("Content-Type", b"application/json")];
    for v in values {
        let own = Detector::Sqli.detect(v.as_bytes()).is_some();
        let q = format!("q={}", v.replace(' ', "+"));
        let body = format!("{{\"q\":\"{v}\"}}");
        let req = Request {
            method: "POST",
            path: "/",
            query: &q,
            headers: &h,
            body: body.as_bytes(),
            body_truncated: false,
            version: "HTTP/1.1",
        };
        let verdict = rs.inspect(&req, &Policy::default());
        for target in ["args:q", "json:$.q"] {
            let engine = verdict
                .matches
                .iter()
                .any(|m| m.rule_id == 1001 && m.target == target);
            assert_eq!(engine, own, "{v:?} in {target}: {verdict:?}");
        }
    }
    // Phrases are gated by the same scan: a scanner's name still matches.
    let ua: [(&str, &[u8]); 1] = [("User-Agent", b"Mozilla/5.0 (compatible; SQLMap/1.7)")];
    let v = rs.inspect(&get("/", "", &ua), &Policy::default());
    assert!(v.matches.iter().any(|m| m.rule_id == 14001), "{v:?}");
}

/// A value holding no byte of a chain's `chain_any_trigger` is taken as
/// the chain's value undecoded: every chain of the built-in rules leaves
/// such values (seeded, over every other byte) unchanged.
#[test]
fn chains_leave_values_without_their_trigger_bytes_alone() {
    let rs = rs();
    let c = &rs.compiled;
    let mut x = 0x5eed_1234_abcd_ef01u64;
    for (chain, trigger) in c.chains.iter().zip(&c.chain_any_trigger) {
        let allowed: Vec<u8> = (0..=255u8).filter(|&b| !trigger.contains(b)).collect();
        if allowed.is_empty() {
            continue;
        }
        for _ in 0..500 {
            let len = (crate::test_support::xorshift(&mut x) % 40) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    let r = crate::test_support::xorshift(&mut x);
                    allowed[(r % allowed.len() as u64) as usize]
                })
                .collect();
            let out = crate::transform::apply_chain(chain, &v);
            assert_eq!(&out[..], &v[..], "{chain:?} changed {v:?}");
        }
    }
}

/// The policy of `paranoia`, and the verdict on `req` without the
/// quiet-value skip, the header cache and the request line's clean values
/// (`inspect::CleanLine`).
fn without_shortcuts(rules: &RuleSet, req: &Request<'_>, paranoia: u8) -> (Policy, crate::Verdict) {
    use super::inspect::NO_SHORTCUTS;
    let p = Policy {
        paranoia,
        ..Policy::default()
    };
    NO_SHORTCUTS.with(|s| s.set(true));
    let v = rules.inspect(req, &p);
    NO_SHORTCUTS.with(|s| s.set(false));
    (p, v)
}

/// The verdict on `req` under `p` without the shortcuts (`without_shortcuts`).
fn verdict_without_shortcuts(rules: &RuleSet, req: &Request<'_>, p: &Policy) -> crate::Verdict {
    use super::inspect::NO_SHORTCUTS;
    NO_SHORTCUTS.with(|s| s.set(true));
    let v = rules.inspect(req, p);
    NO_SHORTCUTS.with(|s| s.set(false));
    v
}

/// The per-group skip and the header cache change no verdict: seeded
/// values of plain words (SQL, shell and script words among them, in any
/// case, with `,` `!` `?` `_` and digits) mixed with punctuation, escapes
/// and encodings, in a query arg, a JSON field, a cookie, a referer and
/// cached headers, each decided with the shortcuts and without
/// them, twice (the second time from the cache).
#[test]
fn shortcuts_change_no_verdict() {
    let words = [
        "union",
        "SELECT",
        "from",
        "where",
        "or",
        "and",
        "1",
        "sleep",
        "cat",
        "etc",
        "passwd",
        "script",
        "alert",
        "onerror",
        "jndi",
        "ldap",
        "order",
        "by",
        "Having",
        "like",
        "null",
        "true",
        "id",
        "ls",
        "bash",
        "wget",
        "drop",
        "table",
        "x",
        "Trail",
        "running",
        "shoe,",
        "model",
        "thanks!",
        "what?",
        "a_b",
        "10",
        "999",
        // Punctuation, escapes and encodings (the per-group skip of
        // non-plain values: `quiet.rs`).
        "alice@example.com",
        "O'Neil",
        "a.b",
        "x-y",
        "/etc/passwd",
        "../",
        "%41",
        "%2e%2E",
        "&amp;",
        "&#x3c;",
        "\\x41",
        "a*b",
        "/*",
        "(1)",
        "<b>",
        "<svg",
        "=",
        ";",
        "|",
        "`",
        "$x",
        "${IFS}",
        "0x2e",
        "0X2f",
        "\t",
        "https://shop.example.com/a?b=c&d=e",
        "SKU-00001",
        "{\"ads\":false}",
        "\\u00e9",
        "caf\u{e9}",
        "javascript:",
        "--",
        "#",
        "+",
        "^",
        "[x]",
        "%3Csvg%20onload%3Dalert%281%29%3E",
        "%27%20OR%20%271%27%3D%271",
        "%3Bcat%20%2Fetc%2Fpasswd",
        "&lt;script&gt;alert&#40;1&#41;",
        "\\x3cscript\\x3e",
        // Base64 (decoded by some chains) and base64 with a blocker.
        "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "JyBPUiAnMSc9JzE=",
        "Y2F0IC9ldGMvcGFzc3dk,",
        "dW5pb24gc2VsZWN0IDEsMiwz.",
        // Unpadded base64 of letters and digits only (plain-looking words).
        "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PiAg",
        "eyJyY2UiOiJfJCRORF9GVU5DJCRfZnVuY3Rpb24oKXtyZXF1aXJlKCdjaGlsZF9wcm9jZXNzJykuZXhlYygnaWQnKX0oKSJ9",
    ];
    let rules = rs();
    let mut x: u64 = 0x51ed_2701_aa55_0f0f;
    let mut fired = 0;
    for round in 0..3_000 {
        let n = 1 + (crate::test_support::xorshift(&mut x) % 6) as usize;
        let mut v = String::new();
        for i in 0..n {
            let r = crate::test_support::xorshift(&mut x);
            if i > 0 {
                v.push_str(if r.is_multiple_of(13) { "  " } else { " " });
            }
            v.push_str(words[(r >> 8) as usize % words.len()]);
        }
        // The base64 words alone (joined to others by blanks they are
        // never read as base64).
        const BASE64_WORDS: usize = 6;
        if round < BASE64_WORDS {
            v = words[words.len() - BASE64_WORDS + round].to_string();
        }
        let form = v.replace(' ', "+");
        let query = format!("q={form}&next={form}");
        let cookie = format!("pref={form}");
        let json = v.replace('\\', "\\\\").replace('"', "\\\"");
        let body = format!("{{\"note\":\"{json}\"}}");
        let h: [(&str, &[u8]); 5] = [
            ("User-Agent", v.as_bytes()),
            ("Accept-Language", v.as_bytes()),
            ("Referer", v.as_bytes()),
            ("Cookie", cookie.as_bytes()),
            ("Content-Type", b"application/json"),
        ];
        // Request lines of the clean table's values (`CleanLine`) and others, in turn.
        let line = round % 4;
        let req = Request {
            method: ["POST", "PUT", "PATCH", "PROPFIND"][line],
            path: ["/p", "/", "/p", "/"][line],
            query: &query,
            headers: &h,
            body: body.as_bytes(),
            body_truncated: false,
            version: ["HTTP/1.1", "HTTP/2", "HTTP/1.0", "HTTP/1.1"][line],
        };
        let paranoia = 1 + (round % 4) as u8;
        let (p, plain) = without_shortcuts(&rules, &req, paranoia);
        for _ in 0..2 {
            let fast = rules.inspect(&req, &p);
            let key = |v: &crate::Verdict| {
                v.matches
                    .iter()
                    .map(|m| (m.rule_id, m.target.clone(), m.fragment.clone(), m.score))
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(&fast), key(&plain), "{v:?} at paranoia {paranoia}");
            assert_eq!(fast.score, plain.score);
        }
        fired += usize::from(!plain.matches.is_empty());
    }
    // The values reach rules at all (the comparison is not vacuous).
    assert!(fired > 20, "{fired}");
}

/// A cached clean header value is clean only for its own paranoia level,
/// and a hit removed by an exclusion is not remembered as clean.
#[test]
fn header_cache_never_hides_a_hit() {
    let rules = rs();
    let shellshock: &[u8] = b"() { :; }; /bin/bash -c 'cat /etc/passwd'";
    let h: [(&str, &[u8]); 1] = [("User-Agent", shellshock)];
    let req = get("/", "", &h);
    let excluded = Policy {
        exclusions: vec![Exclusion {
            rule_id: None,
            family: None,
            target: Some("header:user-agent".into()),
            path_prefix: None,
        }],
        ..Policy::default()
    };
    for _ in 0..2 {
        assert!(!rules.inspect(&req, &excluded).block);
    }
    assert!(rules.inspect(&req, &Policy::default()).block);
    let ua: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let h: [(&str, &[u8]); 1] = [("User-Agent", ua)];
    let req = get("/", "", &h);
    for paranoia in [1, 2, 3, 4, 1] {
        let (p, plain) = without_shortcuts(&rules, &req, paranoia);
        let _ = rules.inspect(&req, &p);
        assert_eq!(
            rules.inspect(&req, &p).score,
            plain.score,
            "paranoia {paranoia}"
        );
    }
}

/// An operator's own rules with a hex literal (`rules_dir`: the built-in
/// files and one of the operator's) read a long word of hex digits
/// wherever extraction counts plain tokens — query, form, JSON value and
/// key, cookie — at a word start (also after a `-`), at the value start
/// with an inline flag, anywhere, as a phrase, and after a chain that
/// lowercases. Session 12 read such a word only at a constant prefix of
/// the built-in rules (`aced0005`), so none of these matched. The
/// built-in rules alone match none of the words.
#[test]
fn operator_hex_rules_read_hex_words_in_every_part() {
    let ops =
        RuleSet::builtin_and(&[("ops.toml", crate::test_support::HEX_OPERATOR_RULES)]).unwrap();
    let builtin = rs();
    let words: [(u32, &str); 9] = [
        (90001, "cafebabe000000340041"),
        // Letters only: the JSON reader's lower-case shortcut asks too.
        (90001, "cafebabedeadbeefface"),
        (90001, "0-cafebabe0000003400"),
        (90002, "80049510000000000000008c"),
        (90002, "8004951A00000000000000008C"),
        (90003, "0123deadbeef0badf00d4567"),
        (90004, "0000C0FFEE00C0FFEE000000"),
        (90005, "FEEDFACE1234567890ABCDEF"),
        (90005, "00-FEEDFACE1234567890AB"),
    ];
    for (id, w) in words {
        let mut places = in_every_token_part(&ops, w);
        if id == 90001 {
            let json_key = format!(r#"{{"{w}":1}}"#);
            let req = Request {
                method: "POST",
                path: "/api",
                query: "",
                headers: &[("Content-Type", b"application/json")],
                body: json_key.as_bytes(),
                body_truncated: false,
                version: "HTTP/1.1",
            };
            places.push(("json key", ops.inspect(&req, &Policy::default())));
        }
        for (place, v) in places {
            assert!(
                v.matches.iter().any(|m| m.rule_id == id),
                "{id} {w} in {place}: {v:?}"
            );
        }
        for (place, v) in in_every_token_part(&builtin, w) {
            assert!(v.matches.is_empty(), "{w} in {place}: {v:?}");
        }
    }
}

/// The verdicts of `set` on the value `w` in the query, a form, a JSON
/// string and a cookie.
fn in_every_token_part(set: &RuleSet, w: &str) -> Vec<(&'static str, crate::Verdict)> {
    let query = format!("q={w}");
    let cookie = format!("theme=dark; c={w}");
    let json = format!(r#"{{"q":"{w}"}}"#);
    let cookie_h: [(&str, &[u8]); 1] = [("Cookie", cookie.as_bytes())];
    let post = |h: &'static [(&'static str, &'static [u8])], body: &[u8]| {
        let req = Request {
            method: "POST",
            path: "/api",
            query: "",
            headers: h,
            body,
            body_truncated: false,
            version: "HTTP/1.1",
        };
        set.inspect(&req, &Policy::default())
    };
    const FORM: &[(&str, &[u8])] = &[("Content-Type", b"application/x-www-form-urlencoded")];
    const JSON: &[(&str, &[u8])] = &[("Content-Type", b"application/json")];
    vec![
        (
            "query",
            set.inspect(&get("/s", &query, &[]), &Policy::default()),
        ),
        ("form", post(FORM, query.as_bytes())),
        ("json", post(JSON, json.as_bytes())),
        (
            "cookie",
            set.inspect(&get("/s", "", &cookie_h), &Policy::default()),
        ),
    ]
}

/// Long plain tokens a rule can match are read whatever letters the
/// match uses and after a dot (review-s13-waf1 F1, F2): the built-in
/// PowerShell (3009) and SQL catalog (1004) rules on single-case words,
/// 7002 on a hex Java stream after `1.`, `v1.`, `x.`; an operator's base32
/// stream and lowercasing rule. Before, all were counted plain in every
/// part and no rule saw them.
#[test]
fn long_plain_tokens_are_read_by_what_the_rules_match() {
    let stream = "aced00057372001a6a6176612e7574696c2e48617368536574";
    let builtin = rs();
    let dotted = [
        format!("1.{stream}"),
        format!("v1.{stream}"),
        format!("x.{stream}"),
        format!("2024.10.{}", stream.to_uppercase()),
    ];
    let mut cases: Vec<(&RuleSet, u32, String)> = vec![
        (&builtin, 3009, "invoke-expression".into()),
        (&builtin, 3009, "INVOKE-EXPRESSION".into()),
        (&builtin, 3009, "set-executionpolicy".into()),
        (&builtin, 3009, "invoke-webrequest".into()),
        (&builtin, 1004, "msysaccessobjects".into()),
    ];
    cases.extend(dotted.iter().map(|w| (&builtin, 7002, w.clone())));
    let with_ops =
        RuleSet::builtin_and(&[("wide.toml", crate::test_support::WIDE_OPERATOR_RULES)]).unwrap();
    cases.push((
        &with_ops,
        90200,
        "VTWQABLTOIABU2TBOZQS45LUNFWC4SDBONUFGZLU".into(),
    ));
    cases.push((&with_ops, 90202, "JAVASERIALIZEDOBJECTXX".into()));
    cases.push((&with_ops, 90202, "javaserializedobjectxx".into()));
    for (set, id, w) in &cases {
        for (place, v) in in_every_token_part(set, w) {
            assert!(
                v.matches.iter().any(|m| m.rule_id == *id),
                "{id} {w} in {place}: {v:?}"
            );
        }
    }
    // Analytics ids, versions and hashes stay unread by every rule.
    for w in [
        "GA1.2.1234567890.1700000000",
        "1.2.840.113549.1.1.11",
        "3f9a1c2b7d8e4f60a1b2c3d4e5f60718",
        "order-summary-widget",
        "v2.14.3-rc1.build.2024",
    ] {
        for (place, v) in in_every_token_part(&with_ops, w) {
            assert!(v.matches.is_empty(), "{w} in {place}: {v:?}");
        }
    }
}

/// The request line's clean values (`inspect::CleanLine`) are asked of the loaded rules, the
/// operator's own included, at every paranoia level: operator rules that fire on `GET`, on
/// `HTTP/1.1` and on the path `/` (one at paranoia 4) still fire on a request of exactly those
/// values, with and without the shortcuts alike, while the built-in rules alone skip them.
/// Fails if the table is fixed, built from the built-in rules only, or read at one level.
#[test]
fn clean_line_values_are_what_no_loaded_rule_fires_on() {
    let builtin = rs();
    let clean = builtin.clean_line_values();
    for (k, v) in [(0, "GET"), (0, "POST"), (1, "HTTP/1.1"), (2, "/")] {
        assert!(clean[k].iter().any(|c| c == v), "{v} not clean: {clean:?}");
    }
    let ops = r#"
family = "protocol"
[[rule]]
id = 90301
message = "operator: GET"
severity = "critical"
targets = ["method"]
regex = '^GET$'
[[rule]]
id = 90302
message = "operator: HTTP/1.1"
severity = "critical"
targets = ["version"]
regex = '^HTTP/1\.1$'
[[rule]]
id = 90303
message = "operator: the root path"
severity = "critical"
paranoia = 4
targets = ["path"]
regex = '^/$'
"#;
    let with_ops = RuleSet::builtin_and(&[("ops.toml", ops)]).unwrap();
    let clean = with_ops.clean_line_values();
    for (k, v) in [(0, "GET"), (1, "HTTP/1.1"), (2, "/")] {
        assert!(
            !clean[k].iter().any(|c| c == v),
            "{v} kept clean: {clean:?}"
        );
    }
    assert!(clean[0].iter().any(|c| c == "POST"), "{clean:?}");
    let req = get("/", "", &[("host", b"localhost")]);
    for paranoia in [1, 4] {
        let p = Policy {
            paranoia,
            ..Policy::default()
        };
        let mut want = vec![90301, 90302];
        if paranoia == 4 {
            want.push(90303);
        }
        for v in [
            with_ops.inspect(&req, &p),
            without_shortcuts(&with_ops, &req, paranoia).1,
        ] {
            let mut ids: Vec<u32> = v.matches.iter().map(|m| m.rule_id).collect();
            ids.sort_unstable();
            assert_eq!(ids, want, "paranoia {paranoia}: {v:?}");
        }
    }
}

/// A request-line value cut into windows by a small value limit is read as windows, not
/// skipped as the whole clean value: an operator rule on the first window's text fires.
#[test]
fn clean_line_skips_no_cut_value() {
    let ops = r#"
family = "protocol"
[[rule]]
id = 90311
message = "operator: a method starting OPT"
severity = "critical"
targets = ["method"]
regex = '^OPT$'
"#;
    let with_ops = RuleSet::builtin_and(&[("ops.toml", ops)]).unwrap();
    assert!(with_ops.clean_line_values()[0]
        .iter()
        .any(|c| c == "OPTIONS"));
    let mut p = Policy::default();
    p.limits.max_value_bytes = 3;
    let req = Request {
        method: "OPTIONS",
        ..get("/", "", &[])
    };
    let v = with_ops.inspect(&req, &p);
    assert!(v.matches.iter().any(|m| m.rule_id == 90311), "{v:?}");
    assert!(with_ops
        .inspect(&req, &Policy::default())
        .matches
        .is_empty());
}

/// The same verdict, whole (matches with targets, fragments and order, score, block,
/// truncated), with the request line's clean values skipped and without (bounded from
/// review-s14-waf's sweep): every candidate method, version and path and some that are not,
/// beside headers, a query and bodies that other rules fire on, at paranoia 1 and 4, with the
/// value limit at its default and cut to 3 bytes, with and without an exclusion, on the
/// built-in rules and on operator rules of each kind on the line classes (phrases, a
/// lowercase chain over two classes, `method_with_body`, a detector). Fails on a skip of a
/// value some loaded rule fires on in any of these places.
#[test]
fn clean_line_skip_changes_no_verdict() {
    let ops = r#"
family = "protocol"
[[rule]]
id = 90401
message = "operator: phrase in a method"
severity = "notice"
paranoia = 3
targets = ["method"]
phrases = ["ETE"]
[[rule]]
id = 90402
message = "operator: lowercased version or path"
severity = "warning"
targets = ["version", "path"]
transforms = ["lowercase"]
regex = 'http/2$|^/.+'
[[rule]]
id = 90403
message = "operator: a body on GET or HEAD"
severity = "critical"
paranoia = 2
targets = ["method_with_body"]
regex = '^(GET|HEAD)$'
[[rule]]
id = 90404
message = "operator: SQL in the path or method"
severity = "critical"
paranoia = 4
targets = ["path", "method"]
detector = "sqli"
"#;
    let sets = [rs(), RuleSet::builtin_and(&[("ops.toml", ops)]).unwrap()];
    // The operator rules keep DELETE (phrase) and HTTP/2 (regex) out of the table.
    let clean = sets[1].clean_line_values();
    assert!(!clean[0].iter().any(|c| c == "DELETE") && !clean[1].iter().any(|c| c == "HTTP/2"));
    let methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "TRACE",
    ];
    let versions = ["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3", "", "HTTP/0.9"];
    let paths = ["/", "/a/..%2f", "//", "/x'"];
    type Headers<'h> = &'h [(&'h str, &'h [u8])];
    let rest: [(Headers<'_>, &[u8]); 3] = [
        (&[], b""),
        (
            &[
                ("Host", b"x"),
                ("Content-Type", b"application/x-www-form-urlencoded"),
                ("Referer", b"http://a.example/"),
            ],
            b"a=1' or 1=1--",
        ),
        (
            &[
                ("User-Agent", b"() { :; }; /bin/bash -c id"),
                ("Content-Type", b"application/json"),
            ],
            b"{\"a\":\"<script>alert(1)</script>\"}",
        ),
    ];
    let (mut n, mut fired) = (0, 0);
    for rules in &sets {
        for (k, m) in methods.iter().enumerate() {
            for (j, v) in versions.iter().enumerate() {
                for (i, p) in paths.iter().enumerate() {
                    let (headers, body) = rest[(i + j + k) % rest.len()];
                    let req = Request {
                        method: m,
                        path: p,
                        query: "q=1",
                        version: v,
                        headers,
                        body,
                        body_truncated: false,
                    };
                    for (paranoia, max_value) in [(1, 16 * 1024), (4, 16 * 1024), (1, 3), (4, 3)] {
                        let mut pol = Policy {
                            paranoia,
                            ..Policy::default()
                        };
                        pol.limits.max_value_bytes = max_value;
                        if (i + k) % 2 == 1 {
                            pol.exclusions.push(Exclusion {
                                rule_id: Some(90402),
                                family: None,
                                target: None,
                                path_prefix: Some("/".into()),
                            });
                        }
                        let slow = verdict_without_shortcuts(rules, &req, &pol);
                        let fast = rules.inspect(&req, &pol);
                        assert_eq!(
                            fast, slow,
                            "{m} {p} {v} paranoia {paranoia} max_value {max_value}"
                        );
                        n += 1;
                        fired += usize::from(!slow.matches.is_empty());
                    }
                }
            }
        }
    }
    assert_eq!(n, 2 * 9 * 6 * 4 * 4);
    assert!(fired > n / 2, "{fired} of {n}");
}

/// The skip happens: with the built-in rules, `GET / HTTP/1.1` has its three request-line
/// fields skipped (counted by `inspect::LINE_SKIPS` in tests), `GET /a` and `PROPFIND /`
/// (which a built-in rule flags) two.
#[test]
fn clean_line_skip_happens() {
    use super::inspect::LINE_SKIPS;
    let rules = rs();
    for (method, path, want) in [("GET", "/", 3), ("GET", "/a", 2), ("PROPFIND", "/", 2)] {
        LINE_SKIPS.with(|c| c.set(0));
        let v = rules.inspect(
            &Request {
                method,
                path,
                ..get("/", "", &[("host", b"localhost")])
            },
            &Policy::default(),
        );
        assert_eq!(v.matches.is_empty(), method == "GET", "{v:?}");
        assert_eq!(
            LINE_SKIPS.with(std::cell::Cell::get),
            want,
            "{method} {path}"
        );
    }
}
