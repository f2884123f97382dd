//! One field's value after each transform chain, computed on demand and
//! shared by chains that start the same way, with the literal hits of each
//! distinct value.

use super::compile::{Compiled, Gate};
use super::prefilter::{BitMask, ByteSet, LOWER, PLAIN_TEXT, UPPER};
use super::quiet::{Skip, BASE64_BLOCKERS};
use crate::transform::Transform;

/// Where a chain's value lives: the raw field value or a chain's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Src {
    Raw,
    Buf(usize),
}

/// The values of the field being inspected. Buffers and tables are kept
/// from field to field (and sized once per request), so the common path
/// does not allocate.
pub(super) struct Values {
    /// Per chain: where its value lives, once computed for this field.
    /// Set for this field when its stamp is `field` (resetting is one
    /// increment, not a pass over every chain).
    at: Vec<(u32, Src)>,
    /// The stamp of the current field.
    field: u32,
    /// Per chain: the byte set of its value (valid when `at` is set).
    bytes: Vec<ByteSet>,
    /// Per chain: its output when the last step changed the value.
    bufs: Vec<Vec<u8>>,
    raw_bytes: ByteSet,
    /// The raw value is plain text (letters, digits, spaces, `_ , @ ! ?`)
    /// that no step decodes: not base64 of text (`Transform::
    /// changes_plain_text`).
    pub plain: bool,
    /// Whether the raw value holds two blanks in a row, once asked.
    double_space: Option<bool>,
    /// The memo entry of the raw value, once computed for this field.
    raw_entry: Option<usize>,
    /// (parent value, step) -> value, for this field: chains that reach the
    /// same value and end in the same step share that step's output (most
    /// chains end in `lowercase` after steps that changed nothing).
    derived: Vec<(Src, Transform, Src, ByteSet)>,
    memo: Memo,
}

impl Values {
    pub(super) fn new(c: &Compiled) -> Values {
        let n = c.chains.len();
        Values {
            at: vec![(0, Src::Raw); n],
            field: 1,
            bytes: vec![ByteSet::default(); n],
            bufs: (0..n).map(|_| Vec::new()).collect(),
            raw_bytes: ByteSet::default(),
            plain: false,
            double_space: None,
            raw_entry: None,
            derived: Vec::new(),
            memo: Memo::default(),
        }
    }

    /// Whether these tables are sized for `c` (a value kept from an
    /// inspection with another rule set may not be).
    pub(super) fn fits(&self, c: &Compiled) -> bool {
        self.at.len() == c.chains.len()
    }

    /// Drops buffers grown past `max` bytes by a large value.
    pub(super) fn trim(&mut self, max: usize) {
        for b in &mut self.bufs {
            if b.capacity() > max {
                *b = Vec::new();
            }
        }
    }

    /// Starts on a new field value, whose byte set the caller may already
    /// know.
    pub(super) fn reset(&mut self, raw: &[u8], known: Option<ByteSet>) {
        self.field = self.field.wrapping_add(1);
        if self.field == 0 {
            // Wrapped: stamps from 2^32 fields ago would read as current.
            self.at.fill((0, Src::Raw));
            self.field = 1;
        }
        self.derived.clear();
        self.memo.clear();
        self.raw_entry = None;
        self.double_space = None;
        self.raw_bytes = known.unwrap_or_else(|| ByteSet::of(raw));
        // Letters and digits may still be base64 of text: decoded (once
        // here) only when every byte is of its alphabet and both cases
        // occur (`transform::decodes_as_base64`).
        self.plain = self.raw_bytes.is_subset(&PLAIN_TEXT)
            && (self.raw_bytes.intersects(&BASE64_BLOCKERS)
                || !self.raw_bytes.intersects(&UPPER)
                || !self.raw_bytes.intersects(&LOWER)
                || !crate::transform::decodes_as_base64(raw));
    }

    /// Whether a group needing `skip` cannot match this field's value
    /// (`quiet.rs`): it holds none of the bytes, no two blanks in a row
    /// if they matter, and none of the literals (by the raw value's one
    /// literal scan, read only when the bytes did not decide).
    #[inline]
    pub(super) fn cannot_match(&mut self, c: &Compiled, raw: &[u8], skip: &Skip) -> bool {
        if skip.bytes.intersects(&self.raw_bytes)
            || (skip.decodes_base64 && !self.raw_bytes.intersects(&BASE64_BLOCKERS))
        {
            return false;
        }
        if skip.spaces && self.raw_bytes.contains(b' ') {
            let twice = *self
                .double_space
                .get_or_insert_with(|| raw.windows(2).any(|w| w == b"  "));
            if twice {
                return false;
            }
        }
        !self.raw_hits_mask(c, raw, &skip.lits)
    }

    /// Where the value of `chain` lives, once computed for this field.
    fn src(&self, chain: usize) -> Option<Src> {
        let (stamp, src) = self.at[chain];
        (stamp == self.field).then_some(src)
    }

    /// Whether the value of `chain` (already ensured) is plain text.
    pub(super) fn is_plain(&self, chain: usize) -> bool {
        self.bytes[chain].is_subset(&PLAIN_TEXT)
    }

    /// The byte set of the value of `chain` (already ensured).
    pub(super) fn byte_set(&self, chain: usize) -> ByteSet {
        self.bytes[chain]
    }

    pub(super) fn get<'a>(&'a self, raw: &'a [u8], src: Src) -> &'a [u8] {
        match src {
            Src::Raw => raw,
            Src::Buf(k) => &self.bufs[k],
        }
    }

    /// Computes the value of `chain`, reusing its parent's.
    pub(super) fn ensure(&mut self, c: &Compiled, raw: &[u8], chain: usize) -> Src {
        if let Some(src) = self.src(chain) {
            return src;
        }
        // No step of the chain changes plain text, or the value holds no
        // byte that starts any of its steps: the value is the raw one.
        if (self.plain && c.chain_keeps_plain[chain])
            || !c.chain_any_trigger[chain].intersects(&self.raw_bytes)
        {
            self.at[chain] = (self.field, Src::Raw);
            self.bytes[chain] = self.raw_bytes;
            return Src::Raw;
        }
        let (parent, parent_bytes) = match c.chain_parent[chain] {
            Some(p) => (self.ensure(c, raw, p), self.bytes[p]),
            None => (Src::Raw, self.raw_bytes),
        };
        let (src, bytes) = match c.chains[chain].last() {
            // Plain text (letters, digits, spaces, light punctuation) has
            // nothing to decode: only case and spacing steps can change it.
            // A step also leaves alone a value without its trigger bytes.
            Some(&step)
                if (!self.plain || step.changes_plain_text())
                    && c.chain_trigger[chain].intersects(&parent_bytes) =>
            {
                match self.derived.iter().find(|d| d.0 == parent && d.1 == step) {
                    Some(&(_, _, src, bytes)) => (src, bytes),
                    None => {
                        let mut buf = std::mem::take(&mut self.bufs[chain]);
                        let changed = step.apply_into(self.get(raw, parent), &mut buf);
                        self.bufs[chain] = buf;
                        let out = if changed {
                            (Src::Buf(chain), ByteSet::of(&self.bufs[chain]))
                        } else {
                            (parent, parent_bytes)
                        };
                        self.derived.push((parent, step, out.0, out.1));
                        out
                    }
                }
            }
            _ => (parent, parent_bytes),
        };
        self.at[chain] = (self.field, src);
        self.bytes[chain] = bytes;
        src
    }

    /// Whether any of these gate bits' literals occurs in the raw value.
    pub(super) fn raw_hits_any(&mut self, c: &Compiled, raw: &[u8], bits: &[usize]) -> bool {
        let entry = self.raw_entry(c, raw);
        bits.iter().any(|&bit| self.memo.hit(entry, bit))
    }

    /// Whether a literal of any gate bit set in `mask` occurs in the raw value.
    pub(super) fn raw_hits_mask(&mut self, c: &Compiled, raw: &[u8], mask: &BitMask) -> bool {
        let entry = self.raw_entry(c, raw);
        mask.hits(&self.memo.data[entry])
    }

    fn raw_entry(&mut self, c: &Compiled, raw: &[u8]) -> usize {
        match self.raw_entry {
            Some(e) => e,
            None => {
                let e = self.memo.entry(c, raw, Src::Raw, &self.bufs);
                self.raw_entry = Some(e);
                e
            }
        }
    }

    /// Whether the value of `chain` (already ensured) opens a gate.
    pub(super) fn opens(&mut self, c: &Compiled, raw: &[u8], chain: usize, gate: &Gate) -> bool {
        if gate.bytes.intersects(&self.bytes[chain]) {
            return true;
        }
        gate.lits
            .is_some_and(|bit| self.lit_hit(c, raw, chain, bit))
    }

    /// Whether a literal of gate `bit` occurs in the value of `chain`
    /// (already ensured), by the value's memoized literal scan.
    pub(super) fn lit_hit(&mut self, c: &Compiled, raw: &[u8], chain: usize, bit: usize) -> bool {
        let src = self.src(chain).unwrap_or(Src::Raw);
        let entry = self.memo.entry(c, raw, src, &self.bufs);
        self.memo.hit(entry, bit)
    }

    /// As `lit_hit` for a value read through `&self` (while a detector
    /// holds it): from the memo when the value was scanned, else by one
    /// walk of the literal automaton over it.
    pub(super) fn lit_hit_in(&self, c: &Compiled, src: Src, value: &[u8], bit: usize) -> bool {
        match self.memo.keys.iter().find(|k| k.0 == src) {
            Some(&(_, entry)) => self.memo.hit(entry, bit),
            None => c.prefilter.as_ref().is_some_and(|p| p.hit(value, bit)),
        }
    }
}

/// Which gates' literals occur in a value, computed once per distinct
/// value (chains that leave a value unchanged share it).
#[derive(Default)]
struct Memo {
    /// (value, index into `data`)
    keys: Vec<(Src, usize)>,
    /// Literal hits per gate bit.
    data: Vec<Vec<u64>>,
    used: usize,
}

impl Memo {
    fn clear(&mut self) {
        self.keys.clear();
        self.used = 0;
    }

    /// The memo data for this value, computed on first use. Values equal
    /// up to ASCII case share it: the literal automaton ignores case.
    fn entry(&mut self, c: &Compiled, raw: &[u8], src: Src, bufs: &[Vec<u8>]) -> usize {
        if let Some(&(_, d)) = self.keys.iter().find(|k| k.0 == src) {
            return d;
        }
        let get = |s: Src| match s {
            Src::Raw => raw,
            Src::Buf(k) => &bufs[k][..],
        };
        let value = get(src);
        let same = self
            .keys
            .iter()
            .find(|k| get(k.0).eq_ignore_ascii_case(value));
        if let Some(&(_, d)) = same {
            self.keys.push((src, d));
            return d;
        }
        if self.used == self.data.len() {
            self.data.push(Vec::new());
        }
        let d = self.used;
        let e = &mut self.data[d];
        e.clear();
        e.resize(c.gate_bits.div_ceil(64), 0);
        if let Some(p) = &c.prefilter {
            p.hits(value, e);
        }
        self.used += 1;
        self.keys.push((src, d));
        d
    }

    fn hit(&self, entry: usize, bit: usize) -> bool {
        self.data[entry][bit / 64] & (1 << (bit % 64)) != 0
    }
}
