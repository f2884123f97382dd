//! DNSSEC audit of names we serve (S.N.11): is each name's zone signed, and does it validate?

use serde::Serialize;

use crate::resolver::{DnsDenial, Resolver, Security};

/// The audit verdict for one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Signed, and the answers validate from the trust anchor.
    Secure,
    /// The zone is provably unsigned (insecure delegation).
    Insecure,
    /// Signed, but the signatures (or the chain to them) do not validate.
    Bogus,
    /// No verdict: the name does not resolve, or the resolver could not be reached.
    Failed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Secure => "secure",
            Verdict::Insecure => "insecure",
            Verdict::Bogus => "bogus",
            Verdict::Failed => "failed",
        }
    }
}

/// One audited name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub name: String,
    pub verdict: Verdict,
    /// Stable code: "secure", "insecure", or the denial's reason code.
    pub code: String,
    pub reason: String,
}

/// Looks up A and AAAA for each name (bypassing the answer cache) and classifies the answers' DNSSEC status.
pub async fn audit(resolver: &Resolver, names: &[String]) -> Vec<Finding> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        out.push(finding(name, resolver.dnssec_status(name).await));
    }
    out
}

fn finding(name: &str, status: Result<Security, DnsDenial>) -> Finding {
    let (verdict, code, reason) = match status {
        Ok(Security::Secure) => (
            Verdict::Secure,
            "secure".to_string(),
            "signed; the A/AAAA answers validate from the trust anchor".to_string(),
        ),
        Ok(Security::Insecure) => (
            Verdict::Insecure,
            "insecure".to_string(),
            "the zone is not signed: its parent proves there is no DS record (insecure \
             delegation)"
                .to_string(),
        ),
        // dnssec_status turns bogus and indeterminate answers into denials; kept for
        // completeness.
        Ok(s) => (
            Verdict::Bogus,
            s.as_str().to_string(),
            format!("answer is {s}"),
        ),
        Err(e @ DnsDenial::Bogus { .. }) | Err(e @ DnsDenial::Indeterminate { .. }) => {
            (Verdict::Bogus, e.reason().to_string(), e.to_string())
        }
        Err(e) => (Verdict::Failed, e.reason().to_string(), e.to_string()),
    };
    Finding {
        name: name.to_string(),
        verdict,
        code,
        reason,
    }
}
