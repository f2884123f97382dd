use std::path::Path;

use rampart_tls::spiffe::SpiffeId;

use super::*;
use crate::source::SourceFile;

/// The payments policy every policy test starts from (shared with the integration tests).
pub(super) use crate::fixtures::PAYMENTS_POLICY as POLICY;

pub(super) fn compile(text: &str) -> Result<Policy, FileError> {
    Policy::from_source(SourceFile::from_text(
        Path::new("policy.toml"),
        text.to_string(),
    ))
}

const FRONTEND: &str = "spiffe://mesh.local/ns/shop/sa/frontend";

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

/// An inbound request from `…/sa/frontend` (no source address).
fn from_frontend(p: &Policy, port: u16, http: Option<(&str, &str)>) -> Decision {
    inbound(p, Some(&id(FRONTEND)), port, http, None)
}

fn inbound(
    p: &Policy,
    caller: Option<&SpiffeId>,
    port: u16,
    http: Option<(&str, &str)>,
    source: Option<&str>,
) -> Decision {
    p.inbound(&InboundRequest {
        caller,
        port,
        source: source.map(|s| s.parse().unwrap()),
        http: http.map(|(method, path)| HttpRequest { method, path }),
    })
}

#[test]
fn ports_whose_rules_read_no_method_or_path_decide_once_per_connection() {
    let p = compile(POLICY).unwrap();
    // 9090's set also holds 8080's method and path rule (a denial names the closest rule of
    // the set, which reads them): per request on both.
    assert!(p.inbound_reads_http(8080) && p.inbound_reads_http(9090));
    // 7000: its only set names callers alone; 6000: no rule at all.
    assert!(!p.inbound_reads_http(7000) && !p.inbound_reads_http(6000));
    let d = from_frontend(&p, 7000, Some(("POST", "/x")));
    assert_eq!(
        d.to_string(),
        from_frontend(&p, 7000, Some(("GET", "/"))).to_string()
    );
}

#[test]
fn admits_by_identity_method_and_path() {
    let p = compile(POLICY).unwrap();
    let d = from_frontend(&p, 8080, Some(("GET", "/v1/payments/42")));
    assert_eq!(d.verdict, Verdict::Allow, "{d}");
    assert_eq!(d.rule.as_ref().unwrap().rule.as_ref(), "frontend-reads");
    assert_eq!(d.rule.as_ref().unwrap().line, 6);
    assert_eq!(d.policy.version, p.source().version());
    // The audit set governing 8080 would deny this (not /healthz): noted, traffic passes.
    let audit = d.audit.as_ref().unwrap();
    assert_eq!(audit.verdict, Verdict::AuditDeny);
    assert!(d.to_string().contains("audit set tighter-dry-run would deny: rule frontend-only-health: path /v1/payments/42 matches none of [/healthz]"), "{d}");
}

#[test]
fn denial_names_closest_rule_and_exact_reason() {
    let p = compile(POLICY).unwrap();
    let d = from_frontend(&p, 8080, Some(("POST", "/v1/payments/42")));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.reason_text().unwrap(),
        "rule frontend-reads: method POST not in [GET]"
    );
    assert_eq!(d.reason.as_ref().unwrap().label(), "method");
    let shown = d.to_string();
    assert!(shown.starts_with("inbound deny: rule frontend-reads: method POST not in [GET] (policy policy.toml sha256:"), "{shown}");

    let d = from_frontend(&p, 8080, Some(("GET", "/admin")));
    assert_eq!(
        d.reason_text().unwrap(),
        "rule frontend-reads: path /admin matches none of [/v1/payments/*, /healthz]"
    );

    let d = from_frontend(&p, 8080, Some(("GET", "/v1/payments/../admin")));
    assert_eq!(d.verdict, Verdict::Deny, "dot segments never match");

    let stranger = id("spiffe://mesh.local/ns/shop/sa/checkout");
    let d = inbound(&p, Some(&stranger), 8080, Some(("GET", "/healthz")), None);
    assert_eq!(
        d.reason_text().unwrap(),
        "rule frontend-reads: caller spiffe://mesh.local/ns/shop/sa/checkout not in [spiffe://mesh.local/ns/shop/sa/frontend]"
    );

    // Frontend on the metrics port: closest rule is frontend-reads (caller matches) and the
    // failing dimension is the port.
    let d = from_frontend(&p, 9090, None);
    assert_eq!(
        d.reason_text().unwrap(),
        "rule frontend-reads: port 9090 not in [8080]"
    );
}

#[test]
fn default_deny_on_ports_without_rules_and_callers_without_identity() {
    let p = compile(POLICY).unwrap();
    let d = from_frontend(&p, 5432, None);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason, Some(DenyReason::NoRuleForPort { port: 5432 }));
    assert!(d.rule.is_none());
    let d = inbound(&p, None, 8080, Some(("GET", "/healthz")), None);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason, Some(DenyReason::NoClientIdentity));
    // Even under audit, no identity means no entry.
    let d = inbound(&p, None, 7000, None, None);
    assert_eq!(d.verdict, Verdict::Deny);
    let empty = Policy::deny_all();
    let d = from_frontend(&empty, 8080, None);
    assert_eq!(d.verdict, Verdict::Deny);
}

#[test]
fn sources_narrow_an_identity_rule() {
    let p = compile(POLICY).unwrap();
    let prom = id("spiffe://mesh.local/ns/ops/sa/prometheus");
    assert_eq!(
        inbound(&p, Some(&prom), 9090, None, Some("10.1.2.3")).verdict,
        Verdict::Allow
    );
    assert_eq!(
        inbound(&p, Some(&prom), 9090, None, Some("127.0.0.1")).verdict,
        Verdict::Allow
    );
    let d = inbound(&p, Some(&prom), 9090, None, Some("192.168.1.1"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.reason_text().unwrap(),
        "rule ops-metrics: source 192.168.1.1 not in [10.0.0.0/8, 127.0.0.1/32]"
    );
    let d = inbound(&p, Some(&prom), 9090, None, None);
    assert_eq!(
        d.verdict,
        Verdict::Deny,
        "unknown source never matches a source rule"
    );
    // The right address with the wrong identity is still denied (S.N.10).
    let other = id("spiffe://mesh.local/ns/shop/sa/frontend2");
    assert_eq!(
        inbound(&p, Some(&other), 9090, None, Some("10.1.2.3")).verdict,
        Verdict::Deny
    );
}

#[test]
fn audit_only_port_passes_would_be_denials() {
    let p = compile(POLICY).unwrap();
    let batch = id("spiffe://mesh.local/ns/batch/sa/nightly");
    let d = inbound(&p, Some(&batch), 7000, None, None);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.rule.as_ref().unwrap().mode, Mode::Audit);
    let d = from_frontend(&p, 7000, None);
    assert_eq!(d.verdict, Verdict::AuditDeny);
    assert!(d.verdict.passes());
    assert!(
        d.to_string().contains("[audit mode: traffic passes]"),
        "{d}"
    );
    assert!(!Verdict::Deny.passes());
}

#[test]
fn method_on_tcp_traffic_is_not_http() {
    let p = compile(POLICY).unwrap();
    let d = from_frontend(&p, 8080, None);
    assert_eq!(d.reason, Some(DenyReason::NotHttp));
}

#[test]
fn methods_compare_case_sensitively() {
    let p = compile(POLICY).unwrap();
    let d = from_frontend(&p, 8080, Some(("get", "/healthz")));
    assert_eq!(
        d.verdict,
        Verdict::Deny,
        "RFC 9110: methods are case-sensitive"
    );
}

#[test]
fn outbound_by_service_identity_and_port() {
    let p = compile(POLICY).unwrap();
    let ledger = id("spiffe://mesh.local/ns/shop/sa/ledger");
    let to = |name, identity, port| OutboundTarget::Service {
        name,
        identity,
        port,
    };
    let d = p.outbound(&to("ledger", &ledger, 9000));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.direction, Direction::Outbound);
    let d = p.outbound(&to("ledger", &ledger, 9001));
    assert_eq!(
        d.reason_text().unwrap(),
        "rule to-ledger: port 9001 not in [9000]"
    );
    let sink = id("spiffe://mesh.local/ns/audit/sa/sink");
    assert_eq!(
        p.outbound(&to("audit-sink", &sink, 1)).verdict,
        Verdict::Allow
    );
    let other = id("spiffe://mesh.local/ns/shop/sa/cart");
    let d = p.outbound(&to("cart", &other, 80));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason.as_ref().unwrap().label(), "destination");
    let d = p.outbound(&OutboundTarget::Outside {
        destination: "1.2.3.4:443",
    });
    assert_eq!(d.reason.as_ref().unwrap().label(), "unknown_destination");
    let none = compile("").unwrap();
    let d = none.outbound(&to("ledger", &ledger, 9000));
    assert_eq!(d.reason, Some(DenyReason::NoOutboundRules));
}

#[test]
fn outbound_audit_set_alone_lets_traffic_pass() {
    let p = compile("[[outbound]]\nname = \"dry\"\nmode = \"audit\"\n[[outbound.rule]]\nname = \"r\"\nservices = [\"ledger\"]\n").unwrap();
    let cart = id("spiffe://mesh.local/ns/shop/sa/cart");
    let d = p.outbound(&OutboundTarget::Service {
        name: "cart",
        identity: &cart,
        port: 1,
    });
    assert_eq!(d.verdict, Verdict::AuditDeny);
}

fn load_err(text: &str) -> FileError {
    compile(text).unwrap_err()
}

#[test]
fn s_n_10_rule_by_address_alone_is_refused() {
    let e = load_err("[[inbound]]\nname = \"s\"\nports = [80]\n[[inbound.rule]]\nname = \"by-ip\"\nsources = [\"10.0.0.0/8\"]\n");
    assert!(e.message.contains("S.N.10"), "{e}");
    assert_eq!(e.field.as_deref(), Some("inbound[0].rule[0].callers"));
    assert_eq!(e.line, Some(4), "{e}");
    let e = load_err("[[inbound]]\nname = \"s\"\nports = [80]\n[[inbound.rule]]\nname = \"by-ip\"\ncallers = []\nsources = [\"10.0.0.0/8\"]\n");
    assert!(e.message.contains("S.N.10"), "{e}");
    assert_eq!(e.line, Some(6), "{e}");
}

#[test]
fn load_errors_name_file_line_and_field() {
    // Unknown field (a typo) is an error, not a silently ignored line.
    let e = load_err("[[inbound]]\nname = \"s\"\nports = [80]\n[[inbound.rule]]\nname = \"r\"\ncallers = [\"spiffe://mesh.local/a\"]\nmethds = [\"GET\"]\n");
    assert_eq!(e.line, Some(7), "{e}");
    assert!(e.message.contains("unknown field `methds`"), "{e}");
    assert!(e.to_string().starts_with("policy.toml:7:1: "), "{e}");

    let e = load_err("[[inbound]]\nname = \"s\"\nports = [80]\n[[inbound.rule]]\nname = \"r\"\ncallers = [\"spiffe://mesh.local/sa/front*\"]\n");
    assert_eq!(
        e.field.as_deref(),
        Some("inbound[0].rule[0].callers[0]"),
        "{e}"
    );
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.message.contains("whole segment"), "{e}");

    let e = load_err("[[inbound]]\nname = \"s\"\nports = [80]\n[[inbound.rule]]\nname = \"r\"\ncallers = [\"spiffe://mesh.local/a\"]\nmethods = [\"G T\"]\n");
    assert_eq!(e.line, Some(7), "{e}");

    let e = load_err("[[inbound]]\nname = \"s\"\nports = [80]\n[[inbound.rule]]\nname = \"s\"\ncallers = [\"spiffe://mesh.local/a\"]\n");
    assert!(e.message.contains("used twice"), "{e}");
    assert_eq!(e.line, Some(5), "{e}");

    let e = load_err("[[inbound]]\nname = \"s\"\nports = []\n");
    assert_eq!(e.field.as_deref(), Some("inbound[0].ports"), "{e}");

    let e = load_err("[[inbound]]\nname = \"s\"\nports = [70000]\n");
    assert_eq!(e.line, Some(3), "{e}");

    let e = load_err("[[inbound]]\nname = \"s\"\nports = [80]\n[[inbound.rule]]\nname = \"r\"\n");
    assert!(e.message.contains("must name its callers"), "{e}");

    let e = load_err("[[inbound]]\nname = \"s\"\nports = [80]\nmode = \"dry\"\n");
    assert_eq!(e.line, Some(4), "{e}");

    let e = load_err("[[outbound]]\nname = \"o\"\n[[outbound.rule]]\nname = \"r\"\nports = [1]\n");
    assert!(
        e.message
            .contains("services from the directory or identities"),
        "{e}"
    );

    let e = load_err("[[inbound]]\nname = \"s\"\nports = [80]\n[[inbound.rule]]\nname = \"r\"\ncallers = [\"spiffe://mesh.local/a\"]\npaths = []\n");
    assert!(e.message.contains("empty list"), "{e}");

    let e = load_err("inbound = 3\n");
    assert_eq!(e.line, Some(1), "{e}");
    let e = load_err("[[inbound]\n");
    assert_eq!(e.line, Some(1), "{e}");
}

#[test]
fn egress_section_parses_into_rampart_egress_types_and_is_linted() {
    let p = compile(
        "[egress]\ndnssec = \"required\"\n[[egress.hosts]]\nname = \"stripe\"\nhost = \"api.stripe.com\"\nports = [443]\nprotocol = \"tls\"\n[[egress.addresses]]\nname = \"wide\"\nnetworks = [\"198.51.0.0/16\"]\nports = [443]\nprotocol = \"tls\"\n[gateway.frontend]\n[[gateway.frontend.hosts]]\nhost = \"*.example.com\"\nports = [443]\nprotocol = \"tls\"\n",
    )
    .unwrap();
    let own = p.egress().unwrap();
    assert_eq!(own.hosts.len(), 1);
    assert_eq!(own.dnssec, rampart_dns::DnssecMode::Required);
    assert_eq!(p.gateway_egress("frontend").unwrap().hosts.len(), 1);
    assert!(p.gateway_egress("ledger").is_none());
    let w = lint::lint(&p, lint::Context::default());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].subject == "[egress] wide"
            && w[0].message.contains("198.51.0.0/16")
            && w[0].line == Some(1),
        "{}",
        w[0]
    );
    // Errors name the line and the field inside the section.
    let e = compile("[egress]\n[[egress.hosts]]\nhost = \"api.stripe.com\"\nports = [443]\nprotocol = \"tls\"\nport = 1\n").unwrap_err();
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.to_string().contains("unknown field"), "{e}");
    let e = compile(
        "[egress]\n[[egress.hosts]]\nhost = \"10.0.0.1\"\nports = [443]\nprotocol = \"tls\"\n",
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("egress.hosts[0].host"), "{e}");
    assert!(e.message.contains("IP address"), "{e}");
    let e = compile("[gateway.Front]\n").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("gateway.Front"), "{e}");
    // No section: no egress.
    assert!(compile("").unwrap().egress().is_none());
}

#[test]
fn lint_finds_rules_that_never_match_and_whole_domain_callers() {
    let text = r#"
[[inbound]]
name = "s"
ports = [8080, 7000]

[[inbound.rule]]
name = "everyone"
callers = ["spiffe://mesh.local/**"]
ports = [8080]

[[inbound.rule]]
name = "foreign"
callers = ["spiffe://other.org/ns/x/sa/y"]

[[inbound.rule]]
name = "wrong-port"
callers = ["spiffe://mesh.local/ns/x/sa/y"]
ports = [1234]

[[inbound.rule]]
name = "http-on-tcp"
callers = ["spiffe://mesh.local/ns/x/sa/y"]
ports = [7000]
methods = ["GET"]

[[outbound]]
name = "o"

[[outbound.rule]]
name = "ghost"
services = ["nowhere"]

[[outbound.rule]]
name = "fine"
services = ["ledger"]
"#;
    let p = compile(text).unwrap();
    let config = crate::config::Config::from_source(SourceFile::from_text(
        Path::new("sidecar.toml"),
        crate::fixtures::payments_sidecar(),
    ))
    .unwrap();
    let directory = crate::directory::Directory::from_source(SourceFile::from_text(
        Path::new("directory.toml"),
        crate::fixtures::payments_directory(),
    ))
    .unwrap();
    let warnings = lint::lint(
        &p,
        lint::Context {
            config: Some(&config),
            directory: Some(&directory),
        },
    );
    let text: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    let has = |needle: &str| text.iter().any(|w| w.contains(needle));
    assert!(
        has("rule everyone: caller spiffe://mesh.local/** admits every workload"),
        "{text:#?}"
    );
    assert!(
        has("rule foreign: caller spiffe://other.org/ns/x/sa/y is outside the trust domain"),
        "{text:#?}"
    );
    assert!(
        has("rule wrong-port: ports [1234] are all outside"),
        "{text:#?}"
    );
    assert!(has("rule http-on-tcp: names HTTP methods"), "{text:#?}");
    assert!(
        has("rule ghost: service `nowhere` is not in the directory"),
        "{text:#?}"
    );
    assert!(!has("rule fine"), "{text:#?}");
    assert_eq!(warnings.len(), 6, "{text:#?}");
    // A clean policy gives no warnings.
    let clean = compile("[[inbound]]\nname = \"s\"\nports = [8080]\n[[inbound.rule]]\nname = \"r\"\ncallers = [\"spiffe://mesh.local/ns/a/sa/b\"]\n").unwrap();
    assert!(lint::lint(
        &clean,
        lint::Context {
            config: Some(&config),
            directory: Some(&directory)
        }
    )
    .is_empty());
}
