//! A compile-time index of a short word table by (length, lower-case first
//! letter): a word is compared only with the entries of its length and
//! first letter (most words with none), never lowered or copied. Shared by
//! the SQL keyword lookup, the HTML named-reference decoder and the shell
//! reader's command names.

/// For each word length below `L` and lower-case first letter, the table
/// entries of that length and letter (bit `k % 64` of part `k / 64` for
/// entry `k`: `P` parts hold up to `64 * P` entries).
pub(crate) struct WordIndex<const L: usize, const P: usize = 1>([[[u64; P]; 26]; L]);

impl<const L: usize, const P: usize> WordIndex<L, P> {
    /// The index of `table`: at most `64 * P` entries, each shorter than
    /// `L` and starting with a lower-case ASCII letter (checked at compile
    /// time).
    pub(crate) const fn new<T: Copy>(table: &[(&[u8], T)]) -> Self {
        Self::of_entries(table, u64::MAX)
    }

    /// The index of the entries of `table` whose bit is set in `keep`
    /// (bit `k` for entry `k`, of the first 64): `find` answers `None` for
    /// the others.
    pub(crate) const fn of_entries<T: Copy>(table: &[(&[u8], T)], keep: u64) -> Self {
        assert!(table.len() <= 64);
        let mut t = Self([[[0; P]; 26]; L]);
        let mut k = 0;
        while k < table.len() {
            if keep >> k & 1 == 1 {
                t = t.with(k, table[k].0);
            }
            k += 1;
        }
        t
    }

    /// The index of a list of words (`find_word`).
    pub(crate) const fn of_words(words: &[&str]) -> Self {
        let mut t = Self([[[0; P]; 26]; L]);
        let mut k = 0;
        while k < words.len() {
            t = t.with(k, words[k].as_bytes());
            k += 1;
        }
        t
    }

    /// This index with entry `k`, the word `w`, added.
    const fn with(mut self, k: usize, w: &[u8]) -> Self {
        assert!(k < 64 * P && w.len() < L && !w.is_empty() && w[0].is_ascii_lowercase());
        self.0[w.len()][(w[0] - b'a') as usize][k / 64] |= 1 << (k % 64);
        self
    }

    /// The value `table` (the one this index was built from) gives `w`,
    /// ASCII case ignored; `None` for any other word, of any bytes.
    pub(crate) fn find<T: Copy>(&self, table: &[(&[u8], T)], w: &[u8]) -> Option<T> {
        self.entry(w, |k| table[k].0).map(|k| table[k].1)
    }

    /// Which of `words` (the list this index was built from) `w` is, ASCII
    /// case ignored; `None` for any other word, of any bytes.
    pub(crate) fn find_word(&self, words: &[&str], w: &[u8]) -> Option<usize> {
        self.entry(w, |k| words[k].as_bytes())
    }

    /// The entry `w` is, comparing it with the entries of its length and
    /// first letter only (`entry` gives entry `k`'s word).
    fn entry<'t>(&self, w: &[u8], entry: impl Fn(usize) -> &'t [u8]) -> Option<usize> {
        let first = (*w.first()? | 0x20).wrapping_sub(b'a');
        let parts = self.0.get(w.len())?.get(usize::from(first))?;
        for (p, &bits) in parts.iter().enumerate() {
            let mut candidates = bits;
            while candidates != 0 {
                let k = p * 64 + candidates.trailing_zeros() as usize;
                if w.eq_ignore_ascii_case(entry(k)) {
                    return Some(k);
                }
                candidates &= candidates - 1;
            }
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

    /// A list past 64 words: every word found in its part, in any case,
    /// among words of the same length and first letter in both parts.
    #[test]
    fn words_past_the_first_part_are_found() {
        let owned: Vec<String> = (0..150).map(|k| format!("w{k}")).collect();
        let words: Vec<&str> = owned.iter().map(String::as_str).collect();
        let index = WordIndex::<5, 3>::of_words(&words);
        for (k, w) in words.iter().enumerate() {
            assert_eq!(index.find_word(&words, w.as_bytes()), Some(k), "{w}");
            let upper = w.to_ascii_uppercase();
            assert_eq!(index.find_word(&words, upper.as_bytes()), Some(k), "{w}");
        }
        for w in ["w150", "w", "x1", "w1a", "", "w00"] {
            assert_eq!(index.find_word(&words, w.as_bytes()), None, "{w}");
        }
    }
}
