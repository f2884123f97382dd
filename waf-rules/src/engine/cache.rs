//! The per-thread cache of clean browser-header values.
//!
//! A client sends the same `User-Agent`, `Accept*`, `Sec-Ch-Ua*` and
//! `Sec-Fetch-*` values on every request, and reading them (the SQL
//! tokenizer on a user agent, the quoted brand list of `Sec-Ch-Ua`) is a
//! large part of a benign request's cost. A value that no rule of the
//! request's paranoia level touched is remembered, and the next request
//! carrying the same header with the same bytes skips it.
//!
//! Why this is sound:
//! - the key is the exact value (compared byte for byte, the hash only
//!   picks the slot), the header name and the paranoia level; a header's
//!   rules read nothing else (its name, its value, its class), so the same
//!   key gives the same (empty) set of rule hits;
//! - only a value on which no rule fired at all is kept ("fired" counted
//!   before exclusions: an excluded hit is not clean for another route);
//! - the cache belongs to one compiled rule set (`Compiled::id`): a reload
//!   starts an empty one;
//! - it is bounded: `SLOTS` slots, values up to `MAX_VALUE` bytes, each
//!   slot overwritten by the next value hashing to it (a client sending
//!   many user agents only evicts, never grows it); nothing is kept but
//!   the bytes of a header value already seen clean on this thread;
//! - only headers whose value names the client software, not the user or
//!   the session: never `Cookie`, `Authorization`, `Referer` (a URL may
//!   carry a token), forwarding or conditional headers. A hit is faster
//!   than a miss, so timing could tell whether some client recently sent
//!   a value: for a browser's user agent or accept list that is public.

/// Slots per thread (a power of two).
const SLOTS: usize = 128;
/// Longer values are not cached (a browser's user agent is 100–250 bytes).
const MAX_VALUE: usize = 320;

/// Headers that may be cached (lower case, as extraction names them).
const CACHED: &[&str] = &[
    "user-agent",
    "accept",
    "accept-language",
    "accept-encoding",
    "accept-charset",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "sec-fetch-user",
    "upgrade-insecure-requests",
    "x-requested-with",
    "content-type",
    "cache-control",
    "pragma",
    "connection",
    "dnt",
    "te",
];

/// A header value seen clean.
#[derive(Default)]
struct Slot {
    /// Index in `CACHED` + 1 (0: empty slot).
    name: u8,
    paranoia: u8,
    value: Vec<u8>,
}

/// The cache of one thread, for one rule set.
#[derive(Default)]
pub(super) struct HeaderCache {
    ruleset: u64,
    slots: Vec<Slot>,
}

/// Where a cacheable header's value goes: its name and slot.
#[derive(Clone, Copy)]
pub(super) struct Key {
    name: u8,
    slot: usize,
}

impl HeaderCache {
    /// Empties the cache if it belongs to another rule set.
    pub(super) fn for_ruleset(&mut self, id: u64) {
        if self.ruleset != id {
            self.ruleset = id;
            self.slots.clear();
        }
    }

    /// The key of a header value that may be cached, if it may.
    pub(super) fn key(name: &str, value: &[u8]) -> Option<Key> {
        if value.len() > MAX_VALUE {
            return None;
        }
        let k = CACHED.iter().position(|c| *c == name)?;
        let name = u8::try_from(k + 1).ok()?;
        let slot = (hash(value) ^ u64::from(name)) as usize & (SLOTS - 1);
        Some(Key { name, slot })
    }

    /// Whether this value was seen clean at this paranoia level.
    pub(super) fn clean(&self, key: Key, paranoia: u8, value: &[u8]) -> bool {
        self.slots
            .get(key.slot)
            .is_some_and(|s| s.name == key.name && s.paranoia == paranoia && s.value == value)
    }

    /// Remembers a value no rule fired on.
    pub(super) fn insert(&mut self, key: Key, paranoia: u8, value: &[u8]) {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Slot::default);
        }
        let s = &mut self.slots[key.slot];
        s.name = key.name;
        s.paranoia = paranoia;
        s.value.clear();
        s.value.extend_from_slice(value);
    }
}

/// A fast hash of a short value, eight bytes at a time (only picks a
/// slot: the value itself is compared).
fn hash(v: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = v.len() as u64;
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K);
    }
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_name_paranoia_and_bytes_hit() {
        let mut c = HeaderCache::default();
        c.for_ruleset(7);
        let ua = b"Mozilla/5.0 (X11; Linux x86_64)";
        let k = HeaderCache::key("user-agent", ua).unwrap();
        assert!(!c.clean(k, 1, ua));
        c.insert(k, 1, ua);
        assert!(c.clean(k, 1, ua));
        assert!(!c.clean(k, 2, ua), "another paranoia level");
        let other = b"Mozilla/5.0 (X11; Linux x86_64}";
        let k2 = HeaderCache::key("user-agent", other).unwrap();
        assert!(!c.clean(k2, 1, other), "one byte differs");
        let ka = HeaderCache::key("accept", ua).unwrap();
        assert!(!c.clean(ka, 1, ua), "another header");
        c.for_ruleset(8);
        assert!(!c.clean(k, 1, ua), "another rule set");
    }

    #[test]
    fn secrets_and_long_values_are_never_cached() {
        for name in [
            "cookie",
            "authorization",
            "referer",
            "x-forwarded-for",
            "x-api-key",
        ] {
            assert!(HeaderCache::key(name, b"x").is_none(), "{name}");
        }
        assert!(HeaderCache::key("user-agent", &[b'a'; MAX_VALUE + 1]).is_none());
    }
}
