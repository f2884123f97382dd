//! `rampart-sidecar policy explain --egress HOST:PORT [--from SERVICE]`: the egress decision
//! offline, from the same function the data path uses (`rampart_egress::explain`).

use std::sync::Arc;

use rampart_egress::EgressPolicy;
use serde_json::json;

use crate::config::Config;
use crate::policy::Policy;

/// Decides `dest` and renders it (text, or JSON with `json`). `from`: a service whose
/// `[gateway.SERVICE]` rules apply (the gateway's view); without it, or when it is the
/// config's own service, the `[egress]` section. Returns whether some protocol is allowed.
pub fn run(
    policy: &Policy,
    config: Option<&Config>,
    from: Option<&str>,
    dest: &str,
    json_out: bool,
) -> Result<(bool, String), String> {
    let own = from.is_none()
        || config.is_some_and(|c| Some(c.service.as_str()) == from && c.gateway.is_none());
    let (section, rules): (String, Option<Arc<EgressPolicy>>) = match from {
        Some(s) if !own => (format!("[gateway.{s}]"), policy.gateway_egress(s).cloned()),
        _ => ("[egress]".into(), policy.egress().cloned()),
    };
    let missing = rules.is_none();
    let rules = rules.unwrap_or_default();
    let mut allowed = false;
    let mut rows = Vec::new();
    let mut text = String::new();
    for (protocol, d) in rampart_egress::explain(&rules, dest, None)? {
        match d {
            Ok(d) => {
                allowed = true;
                text.push_str(&format!(
                    "{:<5} allow  rule {}: {}\n",
                    protocol.as_str(),
                    d.rule,
                    d.explanation
                ));
                rows.push(json!({"protocol": protocol.as_str(), "decision": "allow",
                    "rule": d.rule, "explanation": d.explanation}));
            }
            Err(d) => {
                text.push_str(&format!(
                    "{:<5} deny   {}{}: {d}\n",
                    protocol.as_str(),
                    d.reason(),
                    d.rule().map(|r| format!(" (rule {r})")).unwrap_or_default()
                ));
                rows.push(json!({"protocol": protocol.as_str(), "decision": "deny",
                    "reason": d.reason(), "rule": d.rule(), "explanation": d.to_string()}));
            }
        }
    }
    let file = policy.version();
    let head = format!(
        "egress:   {dest} under {section} of {} {}{}\n",
        file.file,
        file.version,
        if missing {
            " (no such section: no rule, no egress)"
        } else {
            ""
        }
    );
    let note = "an allowed name is still resolved by our resolver when the connection is made: \
                DNSSEC (per rule) and address vetting can deny it then";
    if json_out {
        let v = json!({"destination": dest, "section": section, "policy": file.file,
            "version": file.version, "allowed": allowed, "decisions": rows, "note": note});
        return Ok((allowed, format!("{v:#}\n")));
    }
    let mut out = head + &text;
    if allowed {
        out.push_str(&format!("note:     {note}\n"));
    }
    Ok((allowed, out))
}
