//! `rampart-waf-lab eval`: detection per attack type, false positives per
//! benign set (pooled and averaged per site), and the noisiest rules.

use super::corpus::{self, Item, Label};
use super::crs;
use super::heldout::{self, Owners};
use rampart_waf::{Policy, RuleSet, Verdict};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Corpus files (.jsonl / .jsonl.gz) or CRS test directories.
    #[arg(long, num_args = 1.., required = true)]
    corpus: Vec<PathBuf>,
    /// all | train | holdout (holdout = 1 item in 5, chosen by hash).
    #[arg(long, default_value = "all")]
    split: String,
    /// Keep only 1 item in N (by hash): a fixed, fast sample.
    #[arg(long, default_value_t = 1)]
    every: u64,
    /// Print up to N missed attacks per attack type.
    #[arg(long, default_value_t = 0)]
    show_misses: usize,
    /// Print up to N false positives per benign corpus.
    #[arg(long, default_value_t = 0)]
    show_fp: usize,
    /// The unit left out for the held-out column: `corpus` (an item is held out when no other
    /// attack corpus of the run carries its payload) or `source` (no other payload file, CRS
    /// rule file or site, in its own corpus or another, carries it).
    #[arg(long, default_value = "corpus", value_parser = ["corpus", "source"])]
    leave_out: String,
    /// Print a JSON summary instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Default, Clone, Copy)]
struct Count {
    total: u64,
    hit: u64,
    total_alone: u64,
    hit_alone: u64,
}

impl Count {
    fn add(&mut self, hit: bool, alone: bool) {
        self.total += 1;
        self.hit += u64::from(hit);
        if alone {
            self.total_alone += 1;
            self.hit_alone += u64::from(hit);
        }
    }
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

#[derive(Default)]
struct Report {
    /// (corpus, type) and (corpus, type, placement).
    attacks: BTreeMap<(String, String), Count>,
    attacks_by_placement: BTreeMap<(String, String, String), Count>,
    /// corpus -> pooled; (corpus, site/placement) -> count.
    benign: BTreeMap<String, Count>,
    benign_groups: BTreeMap<(String, String), Count>,
    fp_rules: BTreeMap<(String, u32), (u64, String)>,
    crs_negative: Count,
    /// Up to `--show-misses` missed standalone attacks per (corpus, type): the text shown and
    /// the index of the item's record in `standalone` (to tell held-out misses apart).
    misses: BTreeMap<String, Vec<(String, usize)>>,
    fps: BTreeMap<String, Vec<String>>,
    /// Attack payload keys per corpus, and one record per standalone attack item.
    owners: Owners,
    standalone: Vec<Standalone>,
    /// Filled by `finish`: (corpus, type) and family -> held-out standalone attacks.
    held_out: BTreeMap<(String, String), Count>,
    families: BTreeMap<String, (Count, Vec<String>)>,
    /// `corpus` or `source`: the unit left out.
    leave_out: String,
}

/// A standalone attack item: whether it was blocked and its payload keys.
struct Standalone {
    corpus: usize,
    key: (String, String),
    hit: bool,
    keys: Vec<u64>,
}

pub fn run(rules: &RuleSet, policy: &Policy, a: &EvalArgs) -> Result<ExitCode, String> {
    let split = a.split.clone();
    let every = a.every.max(1);
    let keep = move |k: u64| {
        let hold = k.is_multiple_of(5);
        let in_split = match split.as_str() {
            "train" => !hold,
            "holdout" => hold,
            _ => true,
        };
        in_split && (k / 5).is_multiple_of(every)
    };
    let mut rep = Report {
        leave_out: a.leave_out.clone(),
        ..Report::default()
    };
    let mut on_item = |item: Item| {
        let v = item.request.with(|r| rules.inspect(r, policy));
        rep.add(&item, &v, a);
    };
    for path in &a.corpus {
        if path.is_dir() {
            crs::read_dir(path, &keep, &mut on_item)?;
        } else {
            corpus::read_jsonl(path, &keep, &mut on_item)?;
        }
    }
    rep.finish();
    if a.json {
        println!("{}", rep.json());
    } else {
        rep.print();
    }
    Ok(ExitCode::SUCCESS)
}

impl Report {
    fn add(&mut self, item: &Item, v: &Verdict, a: &EvalArgs) {
        match &item.label {
            Label::Attack(t) => {
                let group =
                    if item.corpus == "crs" || item.group.contains('_') || item.group.len() > 8 {
                        "request".to_string()
                    } else {
                        item.group.clone()
                    };
                self.attacks
                    .entry((item.corpus.clone(), t.clone()))
                    .or_default()
                    .add(v.block, item.standalone);
                let keys = heldout::keys(item.value.as_deref(), &item.request);
                let unit = if a.leave_out == "source" {
                    format!("{}/{}", item.corpus, item.source)
                } else {
                    item.corpus.clone()
                };
                let corpus = self.owners.corpus(&unit);
                self.owners.add(corpus, &keys);
                if item.standalone {
                    self.standalone.push(Standalone {
                        corpus,
                        key: (item.corpus.clone(), t.clone()),
                        hit: v.block,
                        keys,
                    });
                }
                self.attacks_by_placement
                    .entry((item.corpus.clone(), t.clone(), group))
                    .or_default()
                    .add(v.block, item.standalone);
                if !v.block && item.standalone {
                    let record = self.standalone.len() - 1;
                    let m = self
                        .misses
                        .entry(format!("{} {t}", item.corpus))
                        .or_default();
                    if m.len() < a.show_misses {
                        m.push((format!("[{}] {}", item.group, item.show), record));
                    }
                }
            }
            Label::Benign => {
                self.benign
                    .entry(item.corpus.clone())
                    .or_default()
                    .add(v.block, true);
                self.benign_groups
                    .entry((item.corpus.clone(), item.group.clone()))
                    .or_default()
                    .add(v.block, true);
                if v.block {
                    for m in &v.matches {
                        let e = self
                            .fp_rules
                            .entry((item.corpus.clone(), m.rule_id))
                            .or_default();
                        e.0 += 1;
                        if e.1.is_empty() {
                            e.1 = format!("{} = {}", m.target, m.fragment);
                        }
                    }
                    self.keep_fp(&item.corpus, item, v, a.show_fp);
                }
            }
            Label::CrsNegative => {
                self.crs_negative.add(v.block, true);
                // Listed with the false positives so a rule change that makes
                // CRS's own "must not fire" tests fire can be read off.
                if v.block {
                    self.keep_fp("crs-negatives", item, v, a.show_fp);
                }
            }
        }
    }

    /// Counts the standalone attacks that share no normalised payload with the other attack
    /// corpora of the run (leave one corpus out), per (corpus, type) and per family.
    fn finish(&mut self) {
        for s in &self.standalone {
            if !self.owners.held_out(s.corpus, &s.keys) {
                continue;
            }
            self.held_out
                .entry(s.key.clone())
                .or_default()
                .add(s.hit, true);
            let (n, corpora) = self
                .families
                .entry(heldout::family(&s.key.1).to_string())
                .or_default();
            n.add(s.hit, true);
            if !corpora.contains(&s.key.0) {
                corpora.push(s.key.0.clone());
            }
        }
    }

    /// Keeps up to `cap` blocked benign items of `key`, each with the rules that fired.
    fn keep_fp(&mut self, key: &str, item: &Item, v: &Verdict, cap: usize) {
        if cap == 0 {
            return;
        }
        let f = self.fps.entry(key.to_string()).or_default();
        if f.len() < cap {
            let why: Vec<String> = v
                .matches
                .iter()
                .map(|m| format!("{}@{}:{}", m.rule_id, m.target, m.fragment))
                .collect();
            f.push(format!(
                "[{}] {}\n      -> {}",
                item.group,
                item.show.chars().take(300).collect::<String>(),
                why.join(" | ")
            ));
        }
    }

    /// Mean of per-group FP rates (per site for request corpora).
    fn per_group_avg(&self, corpus: &str) -> (f64, usize) {
        let rates: Vec<f64> = self
            .benign_groups
            .iter()
            .filter(|((c, _), _)| c == corpus)
            .map(|(_, n)| pct(n.hit, n.total))
            .collect();
        let n = rates.len();
        (
            if n == 0 {
                0.0
            } else {
                rates.iter().sum::<f64>() / n as f64
            },
            n,
        )
    }

    fn print(&self) {
        println!(
            "== attacks: detected (all items) | detected (standalone attacks only) | held out: \
             standalone attacks sharing no normalised payload with any other {} of this run",
            if self.leave_out == "source" {
                "source (payload file, CRS rule file, site)"
            } else {
                "attack corpus"
            }
        );
        for ((c, t), n) in &self.attacks {
            let h = self
                .held_out
                .get(&(c.clone(), t.clone()))
                .copied()
                .unwrap_or_default();
            println!(
                "{c:<22} {t:<18} {:>6}/{:<6} {:>6.2}% | {:>6}/{:<6} {:>6.2}% | {:>6}/{:<6} {:>6.2}%",
                n.hit,
                n.total,
                pct(n.hit, n.total),
                n.hit_alone,
                n.total_alone,
                pct(n.hit_alone, n.total_alone),
                h.hit,
                h.total,
                pct(h.hit, h.total)
            );
            for ((c2, t2, p), m) in &self.attacks_by_placement {
                if c2 == c && t2 == t && p != "request" {
                    println!(
                        "    {p:<36} {:>6}/{:<6} {:>6.2}% | {:>6.2}%",
                        m.hit,
                        m.total,
                        pct(m.hit, m.total),
                        pct(m.hit_alone, m.total_alone)
                    );
                }
            }
        }
        println!(
            "== held out per family (leave one {} out; value placements counted separately)",
            self.leave_out
        );
        for (f, (n, corpora)) in &self.families {
            println!(
                "{f:<22} {:>6}/{:<6} {:>6.2}%  from {}",
                n.hit,
                n.total,
                pct(n.hit, n.total),
                corpora.join(", ")
            );
        }
        println!("== benign: false positives pooled | averaged per site (request corpora) or per placement (values)");
        for (c, n) in &self.benign {
            let (avg, groups) = self.per_group_avg(c);
            println!(
                "{c:<22} {:>6}/{:<6} {:>6.3}% | avg over {groups} groups {avg:.3}%",
                n.hit,
                n.total,
                pct(n.hit, n.total)
            );
        }
        if self.crs_negative.total > 0 {
            let n = self.crs_negative;
            println!(
                "crs no_expect_ids (weak negatives) blocked {}/{} {:.2}%",
                n.hit,
                n.total,
                pct(n.hit, n.total)
            );
        }
        println!("== rules in false positives (corpus, rule: count, example)");
        let mut v: Vec<_> = self.fp_rules.iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1 .0));
        for ((c, id), (n, ex)) in v.iter().take(25) {
            println!(
                "{c:<22} {id:>6}: {n:>5}  {}",
                ex.chars().take(140).collect::<String>()
            );
        }
        for (k, m) in self.misses.iter().filter(|(_, m)| !m.is_empty()) {
            println!(
                "== missed {k} (held out: no other {} carries the payload)",
                self.leave_out
            );
            for (s, record) in m {
                let r = &self.standalone[*record];
                let tag = if self.owners.held_out(r.corpus, &r.keys) {
                    "held out"
                } else {
                    "shared  "
                };
                println!("   {tag} {}", s.chars().take(220).collect::<String>());
            }
        }
        for (k, m) in &self.fps {
            println!("== false positives {k}");
            for s in m {
                println!("   {s}");
            }
        }
    }

    fn json(&self) -> String {
        let attacks: Vec<_> = self
            .attacks
            .iter()
            .map(|((c, t), n)| {
                let h = self.held_out.get(&(c.clone(), t.clone())).copied().unwrap_or_default();
                serde_json::json!({"corpus": c, "type": t, "total": n.total, "detected": n.hit, "total_standalone": n.total_alone, "detected_standalone": n.hit_alone, "total_held_out": h.total, "detected_held_out": h.hit})
            })
            .collect();
        let families: Vec<_> = self
            .families
            .iter()
            .map(|(f, (n, corpora))| serde_json::json!({"family": f, "total_held_out": n.total, "detected_held_out": n.hit, "corpora": corpora}))
            .collect();
        let benign: Vec<_> = self
            .benign
            .iter()
            .map(|(c, n)| {
                let (avg, groups) = self.per_group_avg(c);
                serde_json::json!({"corpus": c, "total": n.total, "fp": n.hit, "fp_pct": pct(n.hit, n.total), "per_group_avg_pct": avg, "groups": groups})
            })
            .collect();
        serde_json::json!({"attacks": attacks, "leave_out": self.leave_out, "held_out_families": families, "benign": benign})
            .to_string()
    }
}
