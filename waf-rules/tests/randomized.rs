#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Stable-toolchain stand-in for the cargo-fuzz targets in `fuzz/`: a
//! bounded number of random inputs, biased towards the bytes decoders and
//! parsers care about, through every transform, detector, body parser and
//! a whole inspection. No panic, bounded output.

use rampart_waf::{fuzzing, Policy, Request, RuleSet};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self) -> Vec<u8> {
        const ALPHABET: &[u8] =
            b"%&#;\\/.<>\"'`(){}[]=:,+-*$@!?|^ \t\r\nuUxX0123456789abcdefABCDEF";
        const TOKENS: &[&[u8]] = &[
            b"%25",
            b"%u00",
            b"&#x",
            b"&lt",
            b"\\u{",
            b"\\x",
            b"/*!",
            b"*/",
            b"--",
            b"${IFS}",
            b"${::-",
            b"$((",
            b"<!--#",
            b"../",
            b"..\\",
            b"0x2f",
            b"%2%e",
            b"?.",
            b"\xe2\x88\x96",
            b"c:\\",
            b"<![CDATA[",
            b"<!DOCTYPE",
            b"\"a\":",
            b"{\"",
            b"[",
            b"--B\r\n",
            b"Content-Disposition: form-data; name=\"",
            b"\r\n\r\n",
            b"\xc0\xae",
            b"\xef\xbc\x9c",
            b"select",
            b"union",
            b"' or ",
            b"<script",
            b"onload=",
        ];
        let len = (self.next() % 200) as usize;
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            match self.next() % 4 {
                0 => v.push(self.next() as u8),
                1 => v.extend_from_slice(TOKENS[(self.next() % TOKENS.len() as u64) as usize]),
                _ => v.push(ALPHABET[(self.next() % ALPHABET.len() as u64) as usize]),
            }
        }
        v
    }
}

#[test]
fn random_inputs_never_panic() {
    let rules = RuleSet::builtin().unwrap();
    let policy = Policy::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        let data = rng.bytes();
        fuzzing::fuzz_all_transforms(&data);
        let _ = fuzzing::is_sqli(&data);
        let _ = fuzzing::is_xss(&data);
        let _ = fuzzing::is_html_injection(&data);
        let _ = fuzzing::is_shell_injection(&data);
        let _ = fuzzing::is_command_line(&data);
        let _ = fuzzing::is_log4j(&data);
        let _ = fuzzing::is_path_attack(&data);
        fuzzing::fuzz_extract(&data);
        let ct: &[u8] = [
            &b"application/json"[..],
            b"multipart/form-data; boundary=B",
            b"text/xml",
            b"application/x-www-form-urlencoded",
        ][i % 4];
        let q = String::from_utf8_lossy(&data);
        let headers: [(&str, &[u8]); 2] = [("Content-Type", ct), ("Cookie", &data)];
        let req = Request {
            method: "POST",
            path: "/",
            query: &q,
            headers: &headers,
            body: &data,
            body_truncated: false,
            version: "HTTP/1.1",
        };
        let v = rules.inspect(&req, &policy);
        assert!(v.matches.len() <= 64);
    }
}
