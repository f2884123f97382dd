//! `rampart-waf-lab check REQUEST.json`

use super::owned::OwnedRequest;
use rampart_waf::{Policy, RuleSet};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(rules: &RuleSet, policy: &Policy, path: &Path) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let req = OwnedRequest::from_json(&v);
    let verdict = req.with(|r| rules.inspect(r, policy));
    let matches: Vec<serde_json::Value> = verdict
        .matches
        .iter()
        .map(|m| {
            serde_json::json!({
                "rule_id": m.rule_id, "family": m.family.to_string(), "message": &*m.message,
                "target": m.target, "fragment": m.fragment, "score": m.score,
            })
        })
        .collect();
    let out = serde_json::json!({
        "block": verdict.block, "score": verdict.score, "threshold": policy.threshold,
        "paranoia": policy.paranoia, "truncated": verdict.truncated, "matches": matches,
    });
    // A closed pipe (`check r.json | head`) is not an error worth a panic.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&out).unwrap_or_default()
    );
    Ok(if verdict.block {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
