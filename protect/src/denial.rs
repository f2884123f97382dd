//! One denial event type for every refusal the edge and the sidecar make
//! (S.N.12): why ([`DenialReason`]), where and who, and the JSON event line
//! written for connection-level denials (request-level ones go into the
//! access-log line). Counting and alerting are in [`crate::report`].

use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why the edge refused a request or a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DenialReason {
    WafBlock,
    RateLimit,
    ConnCapGlobal,
    ConnCapPerIp,
    ConnRate,
    HeaderTimeout,
    BodyRate,
    HeaderTooLarge,
    TooManyHeaders,
    UriTooLong,
    BodyTooLarge,
    LoadShed,
    H2ResetFlood,
    BadRequest,
    /// A stalled connection closed to make room under the per-IP cap.
    ConnEvictedStalled,
    /// Part of the request (a body past the route's inspect limit, fields
    /// past the WAF's field limit) would reach the upstream uninspected.
    BodyUninspected,
}

impl DenialReason {
    pub const ALL: [DenialReason; 16] = [
        Self::WafBlock,
        Self::RateLimit,
        Self::ConnCapGlobal,
        Self::ConnCapPerIp,
        Self::ConnRate,
        Self::HeaderTimeout,
        Self::BodyRate,
        Self::HeaderTooLarge,
        Self::TooManyHeaders,
        Self::UriTooLong,
        Self::BodyTooLarge,
        Self::LoadShed,
        Self::H2ResetFlood,
        Self::BadRequest,
        Self::ConnEvictedStalled,
        Self::BodyUninspected,
    ];

    /// The label value and config key for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WafBlock => "waf_block",
            Self::RateLimit => "rate_limit",
            Self::ConnCapGlobal => "conn_cap_global",
            Self::ConnCapPerIp => "conn_cap_per_ip",
            Self::ConnRate => "conn_rate",
            Self::HeaderTimeout => "header_timeout",
            Self::BodyRate => "body_rate",
            Self::HeaderTooLarge => "header_too_large",
            Self::TooManyHeaders => "too_many_headers",
            Self::UriTooLong => "uri_too_long",
            Self::BodyTooLarge => "body_too_large",
            Self::LoadShed => "load_shed",
            Self::H2ResetFlood => "h2_reset_flood",
            Self::BadRequest => "bad_request",
            Self::ConnEvictedStalled => "conn_evicted_stalled",
            Self::BodyUninspected => "body_uninspected",
        }
    }

    /// Parses a config key (`[alerts.rules.rate_limit]`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The stage that refuses for this reason: `waf`, `limits` (sizes, rates,
    /// load), `connections` (caps before TLS), `slow_client`, `h2` or `edge`
    /// (malformed requests).
    pub fn stage(self) -> &'static str {
        match self {
            Self::WafBlock | Self::BodyUninspected => "waf",
            Self::RateLimit
            | Self::HeaderTooLarge
            | Self::TooManyHeaders
            | Self::UriTooLong
            | Self::BodyTooLarge
            | Self::LoadShed => "limits",
            Self::ConnCapGlobal
            | Self::ConnCapPerIp
            | Self::ConnRate
            | Self::ConnEvictedStalled => "connections",
            Self::HeaderTimeout | Self::BodyRate => "slow_client",
            Self::H2ResetFlood => "h2",
            Self::BadRequest => "edge",
        }
    }

    /// The HTTP status a request-level denial answers with; `None` for
    /// connection-level denials, which close the socket without a response.
    pub fn http_status(self) -> Option<u16> {
        match self {
            Self::WafBlock => Some(403),
            Self::RateLimit => Some(429),
            Self::HeaderTimeout | Self::BodyRate => Some(408),
            Self::HeaderTooLarge | Self::TooManyHeaders => Some(431),
            Self::UriTooLong => Some(414),
            Self::BodyTooLarge | Self::BodyUninspected => Some(413),
            Self::LoadShed => Some(503),
            Self::BadRequest => Some(400),
            Self::ConnCapGlobal
            | Self::ConnCapPerIp
            | Self::ConnRate
            | Self::H2ResetFlood
            | Self::ConnEvictedStalled => None,
        }
    }
}

impl std::fmt::Display for DenialReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WAF rule families allowed as the `family` label (CRS numbering: 913
/// scanner, 920/921 protocol, 930 lfi, 931 rfi, 932 rce, 933 php, 934
/// generic, 941 xss, 942 sqli, 943 session, 944 java). Anything else is
/// counted as `other`; denials that are not WAF blocks use `none`.
pub const FAMILIES: [&str; 20] = [
    "none", "scanner", "protocol", "lfi", "rfi", "rce", "php", "generic", "xss", "sqli", "session",
    "java", "ssrf", "ssti", "nosql", "xxe", "crlf", "ldap", "redirect", "other",
];

/// Bounds the label value a WAF family name may take.
pub fn family_label(family: Option<&str>) -> &'static str {
    match family {
        None => "none",
        Some(f) => FAMILIES
            .iter()
            .find(|known| known.eq_ignore_ascii_case(f))
            .copied()
            .unwrap_or("other"),
    }
}

/// One refusal, as answered, logged and counted: the one denial type of the
/// edge and the sidecar, for request-level refusals (answered with
/// [`Self::status`]) and connection-level ones (closed, with an event line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenialReason,
    /// Route name from the config, if the request got that far.
    pub route: Option<String>,
    /// WAF rule family for `waf_block`.
    pub family: Option<String>,
    pub client: Option<SocketAddr>,
    /// A short explanation: a machine-readable sub-reason (`malformed_host`,
    /// `te_and_cl`) or a sentence for the operator (limit hit, rule id).
    /// Never client-supplied bytes.
    pub detail: String,
    /// The HTTP status a request-level refusal answers with (by default
    /// [`DenialReason::http_status`]); `None` closes the connection.
    pub status: Option<u16>,
    /// Seconds for the `Retry-After` header (rate limits, load shedding).
    pub retry_after: Option<u64>,
}

impl Denial {
    pub fn new(reason: DenialReason) -> Self {
        Self {
            reason,
            route: None,
            family: None,
            client: None,
            detail: String::new(),
            status: reason.http_status(),
            retry_after: None,
        }
    }

    /// Answers with `status` instead of the reason's usual one (e.g. 405 for
    /// a `bad_request` on a method the edge does not serve).
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The stage that decided (`rampart.denial.by` in the access log).
    pub fn stage(&self) -> &'static str {
        self.reason.stage()
    }

    /// The machine-readable reason for the log line: the sub-reason in
    /// `detail` when one was given, else the reason's name.
    pub fn label(&self) -> &str {
        match self.detail.is_empty() {
            true => self.reason.as_str(),
            false => &self.detail,
        }
    }

    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }

    pub fn family(mut self, family: impl Into<String>) -> Self {
        self.family = Some(family.into());
        self
    }

    pub fn client(mut self, client: SocketAddr) -> Self {
        self.client = Some(client);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The JSON event line for a connection-level denial (no access-log line
    /// exists for those). One line, no trailing newline.
    pub fn event_line(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            timestamp: String,
            event: &'static str,
            #[serde(rename = "rampart.denial.reason")]
            reason: DenialReason,
            #[serde(rename = "rampart.denial.route")]
            route: Option<&'a str>,
            #[serde(rename = "rampart.denial.family")]
            family: &'static str,
            #[serde(rename = "rampart.denial.detail")]
            detail: &'a str,
            #[serde(rename = "client.ip")]
            client_ip: Option<String>,
            #[serde(rename = "client.port")]
            client_port: Option<u16>,
        }
        let line = Line {
            timestamp: now_rfc3339(),
            event: "rampart.denial",
            reason: self.reason,
            route: self.route.as_deref(),
            family: family_label(self.family.as_deref()),
            detail: &self.detail,
            client_ip: self.client.map(|c| c.ip().to_string()),
            client_port: self.client.map(|c| c.port()),
        };
        serde_json::to_string(&line).unwrap_or_else(|_| String::from("{}"))
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Called for every connection-level refusal: count it (`Denials::record`) and
/// write its event line (`Denial::event_line`).
pub type OnDenial = Arc<dyn Fn(Denial) + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_line_is_one_json_object() {
        let d = Denial::new(DenialReason::ConnCapPerIp)
            .client("192.0.2.7:4242".parse().unwrap())
            .detail("per-IP concurrent cap 2 reached");
        let line = d.event_line();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "rampart.denial");
        assert_eq!(v["rampart.denial.reason"], "conn_cap_per_ip");
        assert_eq!(v["rampart.denial.family"], "none");
        assert_eq!(v["client.ip"], "192.0.2.7");
        assert_eq!(v["client.port"], 4242);
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn reason_names_round_trip() {
        for r in DenialReason::ALL {
            assert_eq!(DenialReason::from_name(r.as_str()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert_eq!(DenialReason::from_name("nope"), None);
        assert_eq!(DenialReason::RateLimit.http_status(), Some(429));
        assert_eq!(DenialReason::ConnRate.http_status(), None);
    }
}
