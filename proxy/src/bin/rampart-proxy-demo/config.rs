//! Config sections the demo writes. The proxy's integration tests build their configs from
//! them too (`#[path]`-included), so the listeners and routes the demo runs are the ones tested.
#![allow(dead_code)]

/// An `https` listener (intermediate profile, `edge.pem`/`edge.key`) and an `http` listener
/// that redirects to it, on loopback.
pub fn edge_listeners(https: u16, http: u16) -> String {
    format!(
        r#"[[listeners]]
name = "https"
address = "127.0.0.1:{https}"
[listeners.tls]
profile = "intermediate"
[[listeners.tls.certificates]]
cert = "edge.pem"
key = "edge.key"

[[listeners]]
name = "http"
address = "127.0.0.1:{http}"
redirect_https_port = {https}
"#
    )
}

/// An upstream `upstream` with one endpoint, and a route `route` for `hosts` (a TOML array) to
/// it; ends inside the route, so the caller may add its `[routes.*]` tables.
pub fn route_to(route: &str, upstream: &str, endpoint: &str, hosts: &str) -> String {
    format!(
        r#"[[upstreams]]
name = "{upstream}"
endpoints = ["{endpoint}"]
[[routes]]
name = "{route}"
hosts = {hosts}
upstream = "{upstream}"
"#
    )
}
