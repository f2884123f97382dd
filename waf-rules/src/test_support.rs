//! What unit tests across the crate share.

/// The next value of a xorshift64 sequence (seeded, reproducible test
/// inputs without a random-number dependency).
pub(crate) fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// An operator's own rules (a `rules_dir` file beside the built-in ones)
/// that match words of hex digits: a class file at a word start, a pickle
/// (protocol 4, `8004 95…`) at the value start with an inline flag, a
/// marker anywhere, a phrase, and one whose chain lowercases the value
/// (an upper-case word reaches it in lower case).
pub(crate) const HEX_OPERATOR_RULES: &str = r#"
family = "java"

[[rule]]
id = 90001
message = "operator: Java class file in hex"
severity = "critical"
targets = ["args", "args_names", "cookies"]
transforms = ["url_decode"]
regex = '\bcafebabe'

[[rule]]
id = 90002
message = "operator: Python pickle (protocol 4) in hex"
severity = "critical"
targets = ["args", "cookies"]
regex = '(?i)^800495[0-9a-f]{2}0{6}'

[[rule]]
id = 90003
message = "operator: marker anywhere"
severity = "critical"
targets = ["args", "cookies"]
regex = 'deadbeef0badf00d'

[[rule]]
id = 90004
message = "operator: phrase"
severity = "critical"
targets = ["args", "cookies"]
phrases = ["c0ffee00c0ffee"]

[[rule]]
id = 90005
message = "operator: lowercased then matched"
severity = "critical"
targets = ["args", "cookies"]
transforms = ["lowercase"]
regex = '(?:^|-)feedface[0-9]'
"#;

/// Operator rules beyond hex: a base32 Java stream (90200), a lowercasing rule (90202), a
/// phrase with a dot (90203) — read by the long-word tests of `extract` and `engine`.
pub(crate) const WIDE_OPERATOR_RULES: &str = r#"
family = "java"
[[rule]]
id = 90200
message = "operator: Java stream in base32"
severity = "critical"
targets = ["args", "cookies"]
regex = '\bVTWQAB[A-Z2-7]'
[[rule]]
id = 90202
message = "operator: lowercased word"
severity = "critical"
targets = ["args", "cookies"]
transforms = ["lowercase"]
regex = '\bjavaserialized|(?:^|\.)zz9[a-z]'
[[rule]]
id = 90203
message = "operator: phrase with a dot"
severity = "critical"
targets = ["args"]
phrases = ["v9.evil"]
"#;
