//! Reads rule files, validates every rule, and reports errors by file,
//! line and rule id.

use super::format::{Operator, Rule, RuleDef, RuleFile, TargetSel};
use crate::detect::Detector;
use crate::error::WafError;
use crate::transform::Transform;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// The default rules, compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("sqli.toml", include_str!("../../rules/sqli.toml")),
    ("xss.toml", include_str!("../../rules/xss.toml")),
    ("rce.toml", include_str!("../../rules/rce.toml")),
    ("lfi.toml", include_str!("../../rules/lfi.toml")),
    ("rfi.toml", include_str!("../../rules/rfi.toml")),
    ("php.toml", include_str!("../../rules/php.toml")),
    ("java.toml", include_str!("../../rules/java.toml")),
    ("ssrf.toml", include_str!("../../rules/ssrf.toml")),
    ("ssti.toml", include_str!("../../rules/ssti.toml")),
    ("nosql.toml", include_str!("../../rules/nosql.toml")),
    ("xxe.toml", include_str!("../../rules/xxe.toml")),
    ("crlf.toml", include_str!("../../rules/crlf.toml")),
    ("ldap.toml", include_str!("../../rules/ldap.toml")),
    ("redirect.toml", include_str!("../../rules/redirect.toml")),
    ("scanner.toml", include_str!("../../rules/scanner.toml")),
    ("protocol.toml", include_str!("../../rules/protocol.toml")),
];

/// Rule files' names (as errors name them) and texts, in load order.
pub(crate) type Texts = Vec<(String, Cow<'static, str>)>;

/// The built-in rule files.
pub(crate) fn builtin_texts() -> Texts {
    BUILTIN
        .iter()
        .map(|(name, text)| (format!("builtin:{name}"), Cow::Borrowed(*text)))
        .collect()
}

/// Every `*.toml` file in `dir`, by name.
pub(crate) fn read_dir(dir: &Path) -> Result<Texts, WafError> {
    let io = |source| WafError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(WafError::NoRules(dir.to_path_buf()));
    }
    files
        .into_iter()
        .map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => Ok((path.display().to_string(), Cow::Owned(text))),
            Err(source) => Err(WafError::Io { path, source }),
        })
        .collect()
}

/// Parses rule files in order; a rule id may appear once across all of them.
pub(crate) fn parse_all(texts: &Texts) -> Result<Vec<Rule>, WafError> {
    let mut all = Vec::new();
    let mut seen = HashMap::new();
    for (name, text) in texts {
        parse_file(name, text, &mut seen, &mut all)?;
    }
    Ok(all)
}

/// Parses one file; `seen` maps rule ids to their origin to refuse duplicates.
pub(crate) fn parse_file(
    file: &str,
    text: &str,
    seen: &mut HashMap<u32, String>,
    out: &mut Vec<Rule>,
) -> Result<(), WafError> {
    let parsed: RuleFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        WafError::Syntax {
            file: file.to_string(),
            line: line_of(text, offset),
            rule: enclosing_rule_id(text, offset)
                .map(|id| format!("rule {id}: "))
                .unwrap_or_default(),
            message: e.message().to_string(),
        }
    })?;
    for def in parsed.rule {
        let line = line_of(text, def.id.span().start);
        let id = *def.id.get_ref();
        let origin = format!("{file}:{line}");
        if let Some(first) = seen.get(&id) {
            return Err(WafError::DuplicateId {
                file: file.to_string(),
                line,
                rule_id: id,
                first: first.clone(),
            });
        }
        let family = def.family.unwrap_or(parsed.family);
        let rule = validate(def, family).map_err(|message| WafError::Rule {
            file: file.to_string(),
            line,
            rule_id: id,
            message,
        })?;
        seen.insert(id, origin);
        out.push(rule);
    }
    Ok(())
}

fn validate(def: RuleDef, family: crate::family::Family) -> Result<Rule, String> {
    if !(1..=4).contains(&def.paranoia) {
        return Err(format!("paranoia must be 1 to 4, got {}", def.paranoia));
    }
    if def.targets.is_empty() {
        return Err("targets is empty".into());
    }
    let mut targets = Vec::new();
    for t in &def.targets {
        targets.extend(TargetSel::parse(t).ok_or_else(|| format!("unknown target {t:?}"))?);
    }
    let transforms = def
        .transforms
        .iter()
        .map(|t| Transform::parse(t).ok_or_else(|| format!("unknown transform {t:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let op = match (def.regex, def.phrases, def.detector) {
        (Some(r), None, None) => {
            check_regex(&r)?;
            Operator::Regex(r)
        }
        (None, Some(p), None) => {
            if p.is_empty() || p.iter().any(String::is_empty) {
                return Err("phrases must be non-empty strings".into());
            }
            Operator::Phrases(p)
        }
        (None, None, Some(d)) => Operator::Detector(
            Detector::parse(&d).ok_or_else(|| format!("unknown detector {d:?}"))?,
        ),
        _ => return Err("exactly one of regex, phrases or detector is required".into()),
    };
    Ok(Rule {
        id: *def.id.get_ref(),
        family,
        message: def.message.into(),
        paranoia: def.paranoia,
        score: def.severity.score(),
        targets,
        transforms,
        op,
    })
}

/// Checks a regex alone so a bad one is reported against its rule.
fn check_regex(r: &str) -> Result<(), String> {
    crate::syntax::check(r).map_err(|e| format!("bad regex: {e}"))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The id of the `[[rule]]` table containing `offset`, if it has one.
fn enclosing_rule_id(text: &str, offset: usize) -> Option<u32> {
    let before = &text[..offset.min(text.len())];
    let start = before.rfind("[[rule]]")?;
    let after_start = &text[start..];
    let end = after_start[8..]
        .find("[[rule]]")
        .map_or(after_start.len(), |e| e + 8);
    after_start[..end].lines().find_map(|l| {
        let l = l.trim();
        let v = l.strip_prefix("id")?.trim_start().strip_prefix('=')?;
        v.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Rule>, WafError> {
        let mut out = Vec::new();
        parse_file("t.toml", text, &mut HashMap::new(), &mut out).map(|_| out)
    }

    const GOOD: &str = "family = \"sqli\"\n[[rule]]\nid = 1\nmessage = \"m\"\nseverity = \"critical\"\ntargets = [\"args\"]\nregex = 'a+b'\n";

    #[test]
    fn good_rule_loads() {
        let r = parse(GOOD).unwrap();
        assert_eq!(r[0].id, 1);
        assert_eq!(r[0].score, 5);
    }

    #[test]
    fn errors_name_file_line_and_rule() {
        let bad_regex = GOOD.replace("a+b", "a(b");
        let e = parse(&bad_regex).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:3: rule 1: bad regex"), "{e}");

        let unknown_field = GOOD.replace("severity", "sevrity");
        let e = parse(&unknown_field).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:") && e.contains("rule 1: "), "{e}");

        let bad_target = GOOD.replace("\"args\"", "\"argz\"");
        let e = parse(&bad_target).unwrap_err().to_string();
        assert!(e.contains("rule 1: unknown target \"argz\""), "{e}");

        let dup = format!("{GOOD}[[rule]]\nid = 1\nmessage = \"m\"\nseverity = \"notice\"\ntargets = [\"args\"]\nphrases = [\"x\"]\n");
        let e = parse(&dup).unwrap_err().to_string();
        assert!(e.contains("t.toml:9: rule 1: duplicate"), "{e}");
    }

    #[test]
    fn builtin_rules_all_load() {
        let rules = parse_all(&builtin_texts()).unwrap();
        assert!(rules.len() > 50, "{}", rules.len());
    }
}
