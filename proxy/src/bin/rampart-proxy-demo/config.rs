//! Config sections the demo writes. The proxy's integration tests build their configs from
//! them too (`#[path]`-included), so the listeners and routes the demo runs are the ones tested.
#![allow(dead_code)]

/// A TLS listener `name` on loopback `port` with TLS `profile`, serving `certs` (each `C` is
/// `C.pem`/`C.key`; with several, the first is the default).
pub fn tls_listener(name: &str, port: u16, profile: &str, certs: &[&str]) -> String {
    let mut text = format!(
        "[[listeners]]\nname = \"{name}\"\naddress = \"127.0.0.1:{port}\"\n[listeners.tls]\nprofile = \"{profile}\"\n"
    );
    for (i, c) in certs.iter().enumerate() {
        text += &format!("[[listeners.tls.certificates]]\ncert = \"{c}.pem\"\nkey = \"{c}.key\"\n");
        if i == 0 && certs.len() > 1 {
            text += "default = true\n";
        }
    }
    text
}

/// An `https` listener (intermediate profile, `edge.pem`/`edge.key`) and an `http` listener
/// that redirects to it, on loopback. With `https` 0 (a port the kernel picks) the redirect
/// goes to the default port 443.
pub fn edge_listeners(https: u16, http: u16) -> String {
    let redirect = match https {
        0 => String::new(),
        port => format!("redirect_https_port = {port}\n"),
    };
    format!(
        r#"{tls}
[[listeners]]
name = "http"
address = "127.0.0.1:{http}"
{redirect}"#,
        tls = tls_listener("https", https, "intermediate", &["edge"]),
    )
}

/// An upstream `upstream` with one endpoint, and a route `route` for `hosts` (a TOML array) to
/// it; ends inside the route, so the caller may add its `[routes.*]` tables.
pub fn route_to(route: &str, upstream: &str, endpoint: &str, hosts: &str) -> String {
    format!(
        "[[upstreams]]\nname = \"{upstream}\"\nendpoints = [\"{endpoint}\"]\n{}",
        route_table(route, hosts, upstream)
    )
}

/// A route `route` for `hosts` (a TOML array) to `upstream`; the caller may add its
/// `[routes.*]` tables.
pub fn route_table(route: &str, hosts: &str, upstream: &str) -> String {
    format!("[[routes]]\nname = \"{route}\"\nhosts = {hosts}\nupstream = \"{upstream}\"\n")
}
