//! Linear time in every detector, on the inputs that would expose
//! anything worse: unclosed constructs of every detector repeated, each
//! after another one (mixtures of two units: an opener, then a run), two
//! units alternating, and seeded random mixes of trigger bytes and units.
//! Each input is judged by every detector at two sizes, n and 4n (the
//! random mixes: one mix and four copies of it); linear work grows 4×,
//! quadratic 16×. Every case is screened at 1 and 4 KiB; one whose ratio
//! passes 8 is measured again at 4 and 16 KiB, and fails when the larger
//! takes more than 10× the smaller and more than `FLOOR` (the fastest of
//! two runs of each, and if it fails that, of five: a stall on a shared
//! machine does not fail it; `<a ` repeated, quadratic before, took
//! seconds there). The engine's own
//! worst cases (decoders, gates, nesting, many fields) are in
//! `engine::worst_case`.

use super::test_support::{all, hit};
use super::Detector;
use crate::test_support::xorshift;
use std::time::{Duration, Instant};

/// What 4n may cost above 10× n before it counts as worse than linear.
const FLOOR: Duration = Duration::from_millis(300);

/// Openers: unclosed constructs of every detector, by detector.
const OPENERS: &[&[&str]] = &[
    // Tags, attributes, quotes, CSS, schemes and sinks (xss, html_*).
    &[
        "<a ",
        "<svg ",
        "<x on",
        "<img src=x ",
        "<p style=\"'",
        "<a href=\"",
        "<",
    ],
    &[
        "<set attributename=href ",
        "=\"",
        "='",
        "'\"",
        "\"'`",
        "<!--",
        "<![cdata[",
    ],
    &[
        "&#",
        "&#x",
        "j\ta\tv\ta\ts\tc\tr\ti\tp\tt",
        "javascript:",
        "color:url(",
        "url(",
    ],
    &[
        "a=alert,",
        "setTimeout((",
        "alert",
        "on",
        "location=",
        "(",
        "[",
        "{",
    ],
    // SQL.
    &[
        "/*",
        "/*!",
        "--",
        "' or ",
        "union select ",
        // Session 11's string forms and the backslash readings.
        "$a$",
        "$$",
        "q'[",
        "nq'{",
        "[a",
        "_utf8'",
        "U&'",
        "E'",
        "\\'",
    ],
    // Shell and command lines, Log4j.
    &[
        "${",
        "${${::-j}",
        "$((",
        "$(",
        "`",
        ";",
        "|",
        "&&",
        "\n",
        "\\x",
        "\\",
        "nc -e ",
        "x=i;",
        "$x",
        "%x%",
        "%cd%",
        "${x:-",
        "set x=a&",
        "$'",
        "$'\\x",
    ],
    // JSON Web Tokens: a header, a dot, parts that decode to strings.
    &[
        "eyJ",
        "eyJhIjoi.",
        "eyJhIjoiJyBvciAxPTEtLSJ9.",
        "eyJ7fQ.IiIi.",
    ],
    // Paths, server-side includes, protocol values.
    &[
        "..", "../", "0x2e", "%%32%%65", "\u{ff0e}", "<!--#", "charset=", " ",
    ],
];

/// Runs: what follows an opener, repeated.
const RUNS: &[&str] = &[
    "<a ", "<", ">", "=\"", "'", "(", " ", "\n", "a", "0", "/", "{",
];

/// The fastest of `runs` runs of every detector on `v`.
fn time_all(dets: &[Detector], v: &[u8], runs: usize) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            for &d in dets {
                std::hint::black_box(hit(d, std::hint::black_box(v)));
            }
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Notes `what` when the input `make(n)` at n = 4 × `bytes` costs
/// worse than linear against n = `bytes` (screened, then confirmed at 4×
/// the size: see the module doc).
fn check(
    what: &str,
    dets: &[Detector],
    bytes: usize,
    make: impl Fn(usize) -> Vec<u8>,
    failures: &mut Vec<String>,
) {
    let small = time_all(dets, &make(bytes), 1);
    let large = time_all(dets, &make(4 * bytes), 1);
    if large <= small * 8 {
        return;
    }
    // Confirmed twice, the second time as the fastest of five runs each, so
    // that a process descheduled on a loaded machine is not taken for a
    // quadratic detector (a quadratic one stays 16x slower however often it
    // is timed).
    for runs in [2, 5] {
        let small = time_all(dets, &make(4 * bytes), runs);
        let large = time_all(dets, &make(16 * bytes), runs);
        if large < small * 10 || large < FLOOR {
            return;
        }
        if runs == 5 {
            failures.push(format!(
                "{what}: 4x the input took {large:?} against {small:?}"
            ));
        }
    }
}

/// `prefix`, then `unit` repeated to about `bytes`.
fn run(prefix: &str, unit: &str, bytes: usize) -> Vec<u8> {
    let mut v = prefix.as_bytes().to_vec();
    v.extend(unit.repeat((bytes / unit.len()).max(1)).bytes());
    v
}

#[test]
fn unclosed_constructs_and_mixtures_of_two_stay_linear() {
    let dets = all();
    let mut failures = Vec::new();
    let mut cases: Vec<(String, String)> = Vec::new();
    for o in OPENERS.iter().copied().flatten() {
        // The opener repeated, then repeated after each run unit and
        // alternating with it, and each run unit after it.
        cases.push((String::new(), o.to_string()));
        for r in RUNS {
            cases.push((o.to_string(), r.to_string()));
            cases.push((String::new(), format!("{o}{r}")));
        }
    }
    // A few failures say enough (each costs seconds when quadratic).
    for (prefix, unit) in &cases {
        if failures.len() >= 5 {
            break;
        }
        let what = format!("{prefix:?} then {unit:?}");
        check(
            &what,
            &dets,
            1 << 10,
            |n| run(prefix, unit, n),
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn seeded_random_mixes_of_trigger_bytes_and_units_stay_linear() {
    let dets = all();
    // Every detector's trigger bytes, and the openers as units.
    let mut bytes: Vec<u8> = (0..=255u8)
        .filter(|&b| {
            dets.iter()
                .any(|d| d.triggers().is_some_and(|t| t.contains(b)))
        })
        .collect();
    bytes.extend_from_slice(b"aZ7x ");
    let mut failures = Vec::new();
    let mut x: u64 = 0x51_7cc1_b727_220a;
    for seed in 0..24 {
        let mut mix = Vec::with_capacity(2 << 10);
        while mix.len() < 2 << 10 {
            let r = xorshift(&mut x);
            if r.is_multiple_of(3) {
                let o = OPENERS.concat();
                mix.extend_from_slice(o[(r >> 8) as usize % o.len()].as_bytes());
            } else {
                mix.push(bytes[(r >> 8) as usize % bytes.len()]);
            }
        }
        let what = format!(
            "mix {seed} ({:?}…)",
            String::from_utf8_lossy(&mix[..mix.len().min(60)])
        );
        let len = mix.len();
        check(&what, &dets, len, |n| mix.repeat(n / len), &mut failures);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
