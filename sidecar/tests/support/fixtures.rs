//! The sidecar's TOML fixtures, shared by the integration tests (`support::fixtures`, or
//! `#[path]`-included by tests that need no more of the kit) and the crate's unit tests
//! (`crate::fixtures`, `#[path]`-included under `cfg(test)`): one payments workload — its
//! `sidecar.toml`, the directory it sees and its policy — and builders for the sections tests
//! vary. Standard library only, so every includer compiles it as it is.
#![allow(dead_code)]

use std::net::SocketAddr;

/// The identity of SVID files beside the config (`svid.pem`, `svid.key`, `bundle.pem`).
pub const SVID_FILES: &str = r#"{ cert = "svid.pem", key = "svid.key", bundle = "bundle.pem" }"#;

/// A `sidecar.toml` for `service` in trust domain mesh.local (`policy.toml` and
/// `directory.toml` beside it) with `identity` (an inline table), then `body`.
pub fn sidecar_toml(service: &str, identity: &str, body: &str) -> String {
    format!(
        "service = \"{service}\"\ntrust_domain = \"mesh.local\"\npolicy = \"policy.toml\"\ndirectory = \"directory.toml\"\nidentity = {identity}\n{body}"
    )
}

/// An inbound port section (`[[inbound.port]]`): app port `port` speaking `protocol` ("http"
/// or "tcp") at `app`, the sidecar listening on `listen`.
pub fn inbound_port(port: u16, protocol: &str, app: &str, listen: &str) -> String {
    format!("[[inbound.port]]\nport = {port}\nprotocol = \"{protocol}\"\napp = \"{app}\"\nlisten = \"{listen}\"\n\n")
}

/// An inbound HTTP port section for app port `port` on a free listener.
pub fn http_port(port: u16, app: SocketAddr) -> String {
    inbound_port(port, "http", &app.to_string(), "127.0.0.1:0")
}

/// An inbound TCP port section for app port `port` on a free listener.
pub fn tcp_port(port: u16, app: SocketAddr) -> String {
    inbound_port(port, "tcp", &app.to_string(), "127.0.0.1:0")
}

/// An outbound listener section (`[[outbound.listener]]`): the app connects to `listen` to
/// reach `service`'s `port` over mutual TLS.
pub fn outbound_listener(listen: &str, service: &str, port: u16) -> String {
    format!(
        "[[outbound.listener]]\nlisten = \"{listen}\"\nservice = \"{service}\"\nport = {port}\n"
    )
}

/// A directory entry (`[[service]]`): `name` with SPIFFE ID `id` and its `(port, address)`
/// endpoints.
pub fn directory_service(name: &str, id: &str, endpoints: &[(u16, &str)]) -> String {
    let endpoints: Vec<String> = endpoints
        .iter()
        .map(|(port, address)| format!("{{ port = {port}, address = \"{address}\" }}"))
        .collect();
    format!(
        "[[service]]\nname = \"{name}\"\nidentity = \"{id}\"\nendpoints = [{}]\n",
        endpoints.join(", ")
    )
}

/// A policy admitting `callers` on TCP port `port` (rule set `api`, rule `allowed`).
pub fn allow_policy(port: u16, callers: &[&str]) -> String {
    let callers: Vec<String> = callers.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "[[inbound]]\nname = \"api\"\nports = [{port}]\n\n[[inbound.rule]]\nname = \"allowed\"\ncallers = [{}]\n",
        callers.join(", ")
    )
}

pub const PAYMENTS: &str = "spiffe://mesh.local/ns/shop/sa/payments";
pub const LEDGER: &str = "spiffe://mesh.local/ns/shop/sa/ledger";
pub const FRONTEND: &str = "spiffe://mesh.local/ns/shop/sa/frontend";

/// The payments workload's `sidecar.toml` (SVID files): HTTP app ports 8080 and 9090
/// (metrics), TCP app port 7000, an outbound listener to the ledger's port 9000.
pub fn payments_sidecar() -> String {
    let body = inbound_port(8080, "http", "127.0.0.1:8080", "127.0.0.1:18080")
        + &inbound_port(9090, "http", "127.0.0.1:9090", "127.0.0.1:19090")
        + &inbound_port(7000, "tcp", "127.0.0.1:7000", "127.0.0.1:17000")
        + &outbound_listener("127.0.0.1:29000", "ledger", 9000);
    sidecar_toml("payments", SVID_FILES, &format!("\n{body}"))
}

/// The directory payments sees: itself (8080, 7000), the ledger (9000) and an audit sink
/// (6514).
pub fn payments_directory() -> String {
    directory_service(
        "payments",
        PAYMENTS,
        &[(8080, "127.0.0.1:18080"), (7000, "127.0.0.1:17000")],
    ) + "\n"
        + &directory_service("ledger", LEDGER, &[(9000, "127.0.0.1:19000")])
        + "\n"
        + &directory_service(
            "audit-sink",
            "spiffe://mesh.local/ns/audit/sa/sink",
            &[(6514, "127.0.0.1:16514")],
        )
}

/// The payments policy: the frontend may GET `/v1/payments/*` and `/healthz` on 8080, ops
/// workloads read metrics on 9090 from 10/8 or loopback; audit sets: a tighter one on 8080
/// (frontend, `/healthz` only) and port 7000 for `…/ns/batch/**`; outbound to the ledger's
/// port 9000 and to the audit sinks by identity.
pub const PAYMENTS_POLICY: &str = r#"
[[inbound]]
name = "payments-api"
ports = [8080, 9090]

[[inbound.rule]]
name = "frontend-reads"
callers = ["spiffe://mesh.local/ns/shop/sa/frontend"]
ports = [8080]
methods = ["GET"]
paths = ["/v1/payments/*", "/healthz"]

[[inbound.rule]]
name = "ops-metrics"
callers = ["spiffe://mesh.local/ns/ops/sa/*"]
ports = [9090]
sources = ["10.0.0.0/8", "127.0.0.1"]

[[inbound]]
name = "tighter-dry-run"
mode = "audit"
ports = [8080]

[[inbound.rule]]
name = "frontend-only-health"
callers = ["spiffe://mesh.local/ns/shop/sa/frontend"]
paths = ["/healthz"]

[[inbound]]
name = "new-port"
mode = "audit"
ports = [7000]

[[inbound.rule]]
name = "batch-raw"
callers = ["spiffe://mesh.local/ns/batch/**"]

[[outbound]]
name = "payments-deps"

[[outbound.rule]]
name = "to-ledger"
services = ["ledger"]
ports = [9000]

[[outbound.rule]]
name = "to-audit-sinks"
identities = ["spiffe://mesh.local/ns/audit/sa/*"]
"#;

/// The 1-based line of `text` that starts with `prefix` (for asserting error positions).
pub fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in\n{text}"))
}
