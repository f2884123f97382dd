//! What unit tests across the crate share.

/// The next value of a xorshift64 sequence (seeded, reproducible test
/// inputs without a random-number dependency).
pub(crate) fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}
