//! A compile-time index of a short word table by (length, lower-case first
//! letter): a word is compared only with the entries of its length and
//! first letter (most words with none), never lowered or copied. Shared by
//! the SQL keyword lookup and the HTML named-reference decoder.

/// For each word length below `L` and lower-case first letter, the table
/// entries of that length and letter (bit `k` for entry `k`).
pub(crate) struct WordIndex<const L: usize>([[u64; 26]; L]);

impl<const L: usize> WordIndex<L> {
    /// The index of `table`: at most 64 entries, each shorter than `L` and
    /// starting with a lower-case ASCII letter (checked at compile time).
    pub(crate) const fn new<T: Copy>(table: &[(&[u8], T)]) -> Self {
        Self::of_entries(table, u64::MAX)
    }

    /// The index of the entries of `table` whose bit is set in `keep`
    /// (bit `k` for entry `k`): `find` answers `None` for the others.
    pub(crate) const fn of_entries<T: Copy>(table: &[(&[u8], T)], keep: u64) -> Self {
        assert!(table.len() <= 64);
        let mut t = [[0u64; 26]; L];
        let mut k = 0;
        while k < table.len() {
            let w = table[k].0;
            assert!(w.len() < L && !w.is_empty() && w[0].is_ascii_lowercase());
            if keep >> k & 1 == 1 {
                t[w.len()][(w[0] - b'a') as usize] |= 1 << k;
            }
            k += 1;
        }
        Self(t)
    }

    /// The value `table` (the one this index was built from) gives `w`,
    /// ASCII case ignored; `None` for any other word, of any bytes.
    pub(crate) fn find<T: Copy>(&self, table: &[(&[u8], T)], w: &[u8]) -> Option<T> {
        let first = (*w.first()? | 0x20).wrapping_sub(b'a');
        let mut candidates = *self.0.get(w.len())?.get(usize::from(first))?;
        while candidates != 0 {
            let (k, v) = table[candidates.trailing_zeros() as usize];
            if w.eq_ignore_ascii_case(k) {
                return Some(v);
            }
            candidates &= candidates - 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::WordIndex;

    const TABLE: &[(&[u8], u8)] = &[(b"or", 1), (b"on", 2), (b"and", 3)];
    static INDEX: WordIndex<4> = WordIndex::new(TABLE);

    /// Each word in any case; nothing else, whatever its first byte or
    /// length (no caller has to sort its words first).
    #[test]
    fn finds_only_table_words() {
        for (w, want) in [(&b"OR"[..], Some(1)), (b"oN", Some(2)), (b"And", Some(3))] {
            assert_eq!(INDEX.find(TABLE, w), want, "{w:?}");
        }
        let others: [&[u8]; 9] = [
            b"", b"o", b"ox", b"ann", b"andx", b"@r", b"{r", b"\xefr", b"0r",
        ];
        for w in others {
            assert_eq!(INDEX.find(TABLE, w), None, "{w:?}");
        }
    }
}
