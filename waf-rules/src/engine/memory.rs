//! Where the compiled rules' heap goes, per structure, for `examples/rule_memory.rs` and the
//! edge's memory measurements (docs/measurements/proxy.md). Figures are the automata's own
//! `memory_usage()`: the immutable parts a generation holds. Search caches (one per thread that
//! searched a regex) are not included: they grow with use, see the example.

use super::RuleSet;

/// One line of the report: what it is, how many, heap bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPart {
    pub what: String,
    pub count: usize,
    pub bytes: usize,
}

impl RuleSet {
    /// Heap bytes of the compiled rule set per kind of structure, largest first, then one line
    /// per regex set (label, patterns, bytes) under `detail`. Not a stable API.
    #[doc(hidden)]
    pub fn memory_parts(&self, detail: bool) -> Vec<MemoryPart> {
        let c = &self.compiled;
        let mut parts = Vec::new();
        let mut sets = Vec::new();
        let (mut regex_n, mut regex_b) = (0, 0);
        let (mut cache_b, mut slow) = (0, 0);
        let (mut phrase_n, mut phrase_b) = (0, 0);
        // An automaton shared by several groups (`RegexSet::regex`) is counted once, at the
        // first group using it.
        let mut seen = std::collections::HashSet::new();
        for (gi, g) in c.groups.iter().enumerate() {
            for s in &g.sets {
                if !seen.insert(std::sync::Arc::as_ptr(&s.set.regex)) {
                    continue;
                }
                let b = s.set.regex.multi.memory_usage();
                let (cb, lazy) = s.set.regex.multi.fresh_cache();
                cache_b += cb;
                slow += usize::from(!lazy);
                regex_n += 1;
                regex_b += b;
                sets.push(MemoryPart {
                    what: format!(
                        "  group {gi} regex set, {} patterns (this group's {})",
                        s.set.regex.rules.len(),
                        s.set.rules.len()
                    ),
                    count: 1,
                    bytes: b,
                });
            }
            if let Some((ph, _)) = &g.phrases {
                let b = ph.ac.memory_usage();
                phrase_n += 1;
                phrase_b += b;
                sets.push(MemoryPart {
                    what: format!("  group {gi} phrases ({:?})", ph.ac.kind()),
                    count: 1,
                    bytes: b,
                });
            }
        }
        parts.push(MemoryPart {
            what: "regex sets (forward NFA + lazy DFA, no captures)".into(),
            count: regex_n,
            bytes: regex_b,
        });
        parts.push(MemoryPart {
            what: format!("one thread's new search caches ({slow} sets without lazy DFA)"),
            count: regex_n,
            bytes: cache_b,
        });
        parts.push(MemoryPart {
            what: "phrase automata (AhoCorasick)".into(),
            count: phrase_n,
            bytes: phrase_b,
        });
        if let Some(scan) = &c.prefilter {
            parts.push(MemoryPart {
                what: format!(
                    "literal prefilter (aho-corasick DFA's table, {} literals)",
                    scan.literals()
                ),
                count: 1,
                bytes: scan.memory_usage(),
            });
        }
        let finders: Vec<usize> = c
            .rules
            .iter()
            .filter_map(|r| r.finder.get().and_then(|f| f.as_ref()))
            .map(|re| re.memory_usage())
            .collect();
        parts.push(MemoryPart {
            what: "fragment finders built so far (one regex per matched rule)".into(),
            count: finders.len(),
            bytes: finders.iter().sum(),
        });
        parts.sort_by_key(|p| std::cmp::Reverse(p.bytes));
        if detail {
            sets.sort_by_key(|p| std::cmp::Reverse(p.bytes));
            parts.extend(sets);
        }
        parts
    }
}
