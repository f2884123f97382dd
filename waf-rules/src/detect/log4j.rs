//! Log4Shell by resolution: evaluate Log4j lookups the way Log4j 2 does,
//! innermost first — `${x:-d}` and `${::-d}` give their default `d`,
//! `${lower:d}` / `${upper:d}` give `d`, `${date:'d'}` gives `d` — and
//! flag a lookup whose resolved text starts with `jndi:`. Any nesting and
//! any mix of these spell `jndi` (`${${x:-j}${::-n}${lower:D}i:…}`), so no
//! pattern of the spellings is needed. One pass; nesting past `MAX_DEPTH`
//! is read as text, so the work stays linear in the value times the depth.

use std::ops::Range;

const MAX_DEPTH: usize = 32;

/// Every lookup opens with `${`.
pub(crate) const TRIGGERS: super::Triggers = super::Triggers::new(b"$");

/// Whether `v` holds a lookup resolving to JNDI (fuzzing / tooling entry point).
pub fn is_log4j(v: &[u8]) -> bool {
    detect(v).is_some()
}

pub(crate) fn detect(v: &[u8]) -> Option<Range<usize>> {
    // `contains` on bytes is a memchr: most values have no `$` at all.
    if !v.contains(&b'$') {
        return None;
    }
    let first = v.windows(2).position(|w| w == b"${")?;
    let mut stack: Vec<(usize, Vec<u8>)> = vec![(first, Vec::new())];
    let mut i = first;
    while i < v.len() {
        let b = v[i];
        if b == b'$' && v.get(i + 1) == Some(&b'{') && stack.len() <= MAX_DEPTH {
            stack.push((i, Vec::new()));
            i += 2;
            continue;
        }
        if b == b'}' && stack.len() > 1 {
            let (start, inner) = stack.pop()?;
            if starts_with_ignore_case(inner.trim_ascii_start(), b"jndi:") {
                return Some(start..i + 1);
            }
            let top = &mut stack.last_mut()?.1;
            resolve(&inner, top);
            i += 1;
            continue;
        }
        stack.last_mut()?.1.push(b);
        i += 1;
    }
    None
}

/// Appends what the lookup `${inner}` evaluates to.
fn resolve(inner: &[u8], out: &mut Vec<u8>) {
    // `${anything:-default}`, `${::-d}`: an unset key gives the default.
    if let Some(p) = inner.windows(2).position(|w| w == b":-") {
        out.extend_from_slice(&inner[p + 2..]);
        return;
    }
    for prefix in [&b"lower:"[..], b"upper:"] {
        if starts_with_ignore_case(inner, prefix) {
            out.extend_from_slice(&inner[prefix.len()..]);
            return;
        }
    }
    // `${date:'j'}`: a date pattern's quoted text is printed as is.
    if starts_with_ignore_case(inner, b"date:") {
        out.extend(inner[5..].iter().filter(|&&c| c != b'\''));
        return;
    }
    out.extend_from_slice(b"${");
    out.extend_from_slice(inner);
    out.push(b'}');
}

fn starts_with_ignore_case(v: &[u8], p: &[u8]) -> bool {
    v.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p))
}

#[cfg(test)]
mod tests {
    use super::detect;
    use crate::detect::test_support::assert_each;

    #[test]
    fn nested_spellings_resolve_to_jndi() {
        assert_each(
            |v| detect(v).is_some(),
            true,
            &[
                "${jndi:ldap://x/a}",
                "${${x:-j}${y:-n}di:ldap://x/a}",
                "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://x/a}",
                "${${lower:J}${upper:n}di:dns://x/a}",
                "${${a:-${b:-${c:-j}}}ndi:x}",
                "${j${k8s:k5:-ND}i:ldap://x/a}",
                "${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://x/a}",
                "pre ${ ${env:NOPE:-j}ndi${env:NOPE:-:}x}",
            ],
        );
        assert_each(
            |v| detect(v).is_some(),
            false,
            &[
                "Hello ${name}",
                "${HOME}/x/${USER:-me}",
                "${count:-0} items",
                "${jndi}",
                "jndi:ldap://docs.example/ explains it",
            ],
        );
    }

    #[test]
    fn deep_nesting_stays_bounded() {
        let v = "${".repeat(50_000) + &"}".repeat(50_000);
        assert!(detect(v.as_bytes()).is_none());
    }
}
