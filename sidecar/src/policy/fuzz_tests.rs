//! Bounded fuzzing of the policy parser and matcher: mutated policy files and random requests
//! must never panic, and every decision must be well formed and explain itself. Seeded, so a
//! failure reproduces; bounded in count and time.

use std::time::{Duration, Instant};

use rampart_tls::spiffe::SpiffeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::pattern::{IdPattern, PathPattern};
use super::tests::{compile, POLICY};
use super::*;

const TOKENS: &[&str] = &[
    "*",
    "**",
    "[",
    "]",
    "\"",
    "=",
    "\n",
    "{",
    "}",
    ",",
    ".",
    "/",
    "..",
    "spiffe://",
    "spiffe://mesh.local/",
    "mode = \"audit\"\n",
    "sources = [\"10.0.0.0/8\"]\n",
    "callers = []\n",
    "[[inbound]]\n",
    "[[inbound.rule]]\n",
    "[[outbound.rule]]\n",
    "[egress]\n",
    "ports = [0]\n",
    "ports = [65535]\n",
    "methods = [\"get\"]\n",
    "paths = [\"/**\"]\n",
    "name = \"x\"\n",
    "é",
    "\u{0}",
    "'''",
    "#",
    "\t",
    "99999999999999999999",
];

fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..rng.gen_range(1..6) {
        let at = rng.gen_range(0..=bytes.len());
        match rng.gen_range(0..5) {
            0 => {
                let t = TOKENS[rng.gen_range(0..TOKENS.len())];
                bytes.splice(at..at, t.bytes());
            }
            1 if !bytes.is_empty() => {
                let end = (at + rng.gen_range(1..40)).min(bytes.len());
                let start = at.min(end);
                bytes.drain(start..end);
            }
            2 if at < bytes.len() => bytes[at] = rng.gen(),
            3 => bytes.truncate(at),
            _ => {
                // Duplicate a slice somewhere else (repeated tables and keys).
                let end = (at + rng.gen_range(1..120)).min(bytes.len());
                let slice = bytes[at.min(end)..end].to_vec();
                let to = rng.gen_range(0..=bytes.len());
                bytes.splice(to..to, slice);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn random_segment(rng: &mut StdRng) -> String {
    const SEGS: &[&str] = &[
        "ns", "shop", "sa", "frontend", "ops", "batch", "audit", "sink", "x", "*", "..", ".", "",
        "a-b_c.d",
    ];
    SEGS[rng.gen_range(0..SEGS.len())].to_string()
}

fn random_id(rng: &mut StdRng) -> Option<SpiffeId> {
    let domain = ["mesh.local", "other.org", "Mesh.local"][rng.gen_range(0..3)];
    let n = rng.gen_range(0..6);
    let segs: Vec<String> = (0..n).map(|_| random_segment(rng)).collect();
    SpiffeId::parse(&format!("spiffe://{domain}/{}", segs.join("/"))).ok()
}

fn random_path(rng: &mut StdRng) -> String {
    const SEGS: &[&str] = &[
        "v1", "payments", "42", "healthz", "..", ".", "", "%2e%2e", "admin", "static", "é",
    ];
    let n = rng.gen_range(0..6);
    let segs: Vec<&str> = (0..n).map(|_| SEGS[rng.gen_range(0..SEGS.len())]).collect();
    let mut p = format!("/{}", segs.join("/"));
    if rng.gen_bool(0.1) {
        p = p.trim_start_matches('/').to_string();
    }
    p
}

fn check_decision(d: &Decision) {
    match d.verdict {
        Verdict::Allow => {
            assert!(d.rule.is_some(), "an allow names its rule: {d:?}");
            assert!(d.reason.is_none(), "{d:?}");
        }
        Verdict::Deny | Verdict::AuditDeny => {
            assert!(d.reason.is_some(), "a denial says why: {d:?}");
            assert!(d.reason_text().is_some_and(|r| !r.is_empty()));
        }
    }
    if d.verdict == Verdict::AuditDeny {
        assert_eq!(
            d.rule.as_ref().map(|r| r.mode).unwrap_or(Mode::Audit),
            Mode::Audit
        );
    }
    let shown = d.to_string();
    assert!(shown.contains(&d.policy.version), "{shown}");
    serde_json::to_string(d).unwrap();
}

fn exercise(policy: &Policy, rng: &mut StdRng) {
    for _ in 0..20 {
        let caller = random_id(rng);
        let port = [8080, 9090, 7000, 1, rng.gen()][rng.gen_range(0..5)];
        let method = ["GET", "POST", "get", "", "DELETE"][rng.gen_range(0..5)];
        let path = random_path(rng);
        let http = rng.gen_bool(0.6).then_some(HttpRequest {
            method,
            path: &path,
        });
        let source = rng
            .gen_bool(0.5)
            .then(|| std::net::IpAddr::from(rng.gen::<[u8; 4]>()));
        let req = InboundRequest {
            caller: caller.as_ref(),
            port,
            source,
            http,
        };
        let d = policy.inbound(&req);
        check_decision(&d);
        assert_eq!(d, policy.inbound(&req), "decisions are deterministic");
        if caller.is_none() {
            assert_eq!(d.verdict, Verdict::Deny);
        }
        if let Some(id) = &caller {
            let name = random_segment(rng);
            let out = policy.outbound(&OutboundTarget::Service {
                name: &name,
                identity: id,
                port,
            });
            check_decision(&out);
        }
    }
}

#[test]
fn mutated_policies_never_panic_and_decisions_explain_themselves() {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rng = StdRng::seed_from_u64(0x005e_ed12);
    let (mut loaded, mut refused) = (0u32, 0u32);
    for round in 0..4000 {
        if Instant::now() > deadline {
            break;
        }
        let text = mutate(&mut rng, POLICY);
        match compile(&text) {
            Ok(policy) => {
                loaded += 1;
                exercise(&policy, &mut rng);
                let _ = lint::lint(&policy, lint::Context::default());
            }
            Err(e) => {
                refused += 1;
                assert!(
                    !e.message.is_empty(),
                    "round {round}: empty error {e:?} for {text:?}"
                );
                if let Some(line) = e.line {
                    assert!(
                        line >= 1 && line <= text.lines().count() + 1,
                        "round {round}: line {line} out of range: {e}"
                    );
                }
            }
        }
    }
    // Both paths were exercised (the mutation rate keeps many files loadable).
    assert!(
        loaded > 50 && refused > 50,
        "loaded {loaded}, refused {refused}"
    );
}

#[test]
fn random_patterns_never_panic_and_exact_ids_match_only_themselves() {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..20_000 {
        if Instant::now() > deadline {
            break;
        }
        let n = rng.gen_range(0..6);
        let segs: Vec<String> = (0..n).map(|_| random_segment(&mut rng)).collect();
        let text = format!("spiffe://mesh.local/{}", segs.join("/"));
        let pattern = IdPattern::parse(&text);
        let path_pattern = PathPattern::parse(&format!("/{}", segs.join("/")));
        if let (Ok(p), Some(id)) = (&pattern, random_id(&mut rng)) {
            if p.is_exact() {
                assert_eq!(p.matches(&id), id.as_str() == text, "{p} vs {id}");
            }
            // A pattern always matches the ID with its wildcards filled in.
            let filled = text.replace("/**", "/z/z").replace("/*", "/y");
            if let Ok(filled) = SpiffeId::parse(&filled) {
                assert!(p.matches(&filled), "{p} must match {filled}");
            }
        }
        if let Ok(pp) = path_pattern {
            let path = random_path(&mut rng);
            let _ = pp.matches(&path);
            assert!(
                !pp.matches(&format!("{path}/../x")),
                "{pp} matched a dot segment"
            );
        }
        let junk: String = (0..rng.gen_range(0..30))
            .map(|_| rng.gen::<char>())
            .collect();
        let _ = IdPattern::parse(&junk);
        let _ = PathPattern::parse(&junk);
    }
}
