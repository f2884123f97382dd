//! Why the edge answered a request itself instead of forwarding it.

use rampart_protect::denial::DenialReason;

/// Why the edge answered a request itself (for logs and metrics).
///
/// The one denial path: `respond::deny` writes the response; when
/// `counted` names a protect reason the denial is counted once in
/// `rampart_denials_total{reason,route,family}` and fed to the alerter; the access log puts it
/// in the request's line.
#[derive(Debug, Clone)]
pub struct Denial {
    /// Stage that decided: "edge", "waf", "limits", ...
    pub by: &'static str,
    /// Short machine-readable reason, e.g. "no_route", "malformed_host", "waf_block".
    pub reason: String,
    pub status: u16,
    /// The `rampart_denials_total` reason; `None` for answers that are not refusals
    /// (redirects, no route) and for refusals counted where they were decided.
    pub counted: Option<DenialReason>,
    /// WAF rule family (the `family` label).
    pub family: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl Denial {
    /// A refusal by a protection stage, counted under `reason`.
    pub fn protect(by: &'static str, reason: DenialReason, status: u16) -> Self {
        Denial {
            by,
            reason: reason.as_str().to_string(),
            status,
            counted: Some(reason),
            family: None,
            retry_after: None,
        }
    }

    /// An edge answer that is not a refusal (redirect, no route).
    pub fn answer(reason: &str, status: u16) -> Self {
        Denial {
            by: "edge",
            reason: reason.to_string(),
            status,
            counted: None,
            family: None,
            retry_after: None,
        }
    }

    /// A malformed request (400), with the reason it is malformed.
    pub fn bad_request(reason: &str) -> Self {
        Denial {
            reason: reason.to_string(),
            ..Denial::protect("edge", DenialReason::BadRequest, 400)
        }
    }
}
