//! The compiled, immutable form of a config: what the request path reads, one generation.
//! A generation holds the routes, upstreams, policies, WAF rules and every TLS listener's
//! rustls config together. A reload builds a whole new [`Runtime`] off the request path and
//! publishes it with one store (`rampart_ops::reload::Generations`, see `control::reload`); a
//! connection takes the TLS config of the generation current at its handshake, a request the
//! generation current when it starts, and both keep theirs to the end.

use crate::config::{Config, LimitsConfig, TlsProfile, WafMode};
use crate::error::EdgeError;
use crate::policy::cookies::CookiePolicy;
use crate::policy::forward::TrustedProxies;
use crate::policy::headers::HeaderPolicy;
use crate::policy::route::Router;
use crate::tls::EdgeIdentity;
use crate::upstream::Upstream;
use rampart_protect::defences::{DefenceSettings, Task};
use rustls::ServerConfig;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// One route with everything a request on it needs.
pub struct Route {
    pub name: String,
    pub upstream: Arc<Upstream>,
    pub headers: HeaderPolicy,
    pub cookies: CookiePolicy,
    pub waf: RouteWaf,
    /// Its request counters and duration histogram (`request::log`).
    pub metrics: crate::metrics::RouteMetrics,
}

/// A route's compiled WAF policy and body limits.
pub struct RouteWaf {
    pub mode: WafMode,
    pub policy: rampart_waf::Policy,
    pub inspect_limit: usize,
    pub max_body: u64,
    /// `insecure_pass_uninspected_body`: forward what the WAF could not inspect whole.
    pub pass_uninspected: bool,
}

impl RouteWaf {
    fn compile(c: &crate::config::RouteWafConfig) -> Self {
        RouteWaf {
            mode: c.mode,
            policy: rampart_waf::Policy {
                paranoia: c.paranoia,
                threshold: c.threshold,
                exclusions: c.exclusions.clone(),
                limits: rampart_waf::Limits {
                    max_body_bytes: c.inspect_limit,
                    ..rampart_waf::Limits::default()
                },
            },
            inspect_limit: c.inspect_limit,
            max_body: c.max_body,
            pass_uninspected: c.insecure_pass_uninspected_body,
        }
    }
}

/// How a listener treats requests (looked up by the connection's local port).
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub name: String,
    pub tls: Option<TlsProfile>,
    pub insecure_plaintext: bool,
    pub redirect_https_port: u16,
    /// Its `rampart_active_requests` gauge (`request::identify`, `request::log`).
    pub metrics: crate::metrics::ListenerMetrics,
}

#[derive(Clone)]
pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Arc<Router<Route>>,
    pub upstreams: HashMap<String, Arc<Upstream>>,
    pub listeners: Listeners,
    pub trusted: TrustedProxies,
    /// For responses with no route (404, redirects, malformed requests).
    pub default_headers: HeaderPolicy,
    pub redact_keys: Vec<String>,
    /// Compiled once per load; swapped with the rest of the runtime on SIGHUP.
    pub waf_rules: Arc<rampart_waf::RuleSet>,
    pub limits: LimitsConfig,
    /// TLS listener name → its rustls config (profile, ALPN, certificates by SNI).
    pub tls: HashMap<String, Arc<ServerConfig>>,
    /// The `[protect]` settings: rate limits, connection caps, load shedding, slow-client and
    /// alert settings (their counts and buckets live in `Shared::defences`).
    pub protect: Arc<DefenceSettings>,
}

impl Runtime {
    /// Compiles a validated config: WAF rules, upstream pools (names resolved, CA files read),
    /// routes, header and cookie policies, the listeners' TLS configs (certificate files read,
    /// certificates from the CA through `identity`).
    /// Listeners are known by their configured ports (see [`Self::next`] for bound ones).
    pub fn build(config: Config, identity: Option<&Arc<EdgeIdentity>>) -> Result<Self, EdgeError> {
        Self::next(config, identity, None, &[]).map(|(runtime, _)| runtime)
    }

    /// [`Self::build`] for the generation after `previous` (a reload: the defences' settings
    /// carry over their state where unchanged, see `DefenceSettings::build`), with its
    /// listeners known by the ports bound at start (`bound`: listener name → address; a
    /// listener configured with port 0 is served on the port the kernel chose, which only the
    /// bound socket knows; one not in `bound` by its configured port). Also returns the
    /// defences' tasks to run once this generation is in force.
    pub fn next(
        config: Config,
        identity: Option<&Arc<EdgeIdentity>>,
        previous: Option<&Runtime>,
        bound: &[(String, SocketAddr)],
    ) -> Result<(Self, Vec<Task>), EdgeError> {
        let routes = config.routes.iter().map(|r| r.name.clone()).collect();
        let (protect, tasks) =
            DefenceSettings::build(&config.protect, routes, previous.map(|p| &*p.protect))
                .map_err(EdgeError::Protect)?;
        let tls = crate::tls::build_listener_configs(&config, identity.map(|i| &**i))?;
        let waf_rules = compile_waf_rules(&config, previous)?;
        let mut upstreams = HashMap::new();
        for u in &config.upstreams {
            let up = Upstream::build(u, identity).map_err(|message| EdgeError::Upstream {
                upstream: u.name.clone(),
                message,
            })?;
            upstreams.insert(u.name.clone(), Arc::new(up));
        }
        let mut router = Router::new();
        for r in &config.routes {
            let upstream =
                upstreams
                    .get(&r.upstream)
                    .cloned()
                    .ok_or_else(|| EdgeError::RouteUpstream {
                        route: r.name.clone(),
                        upstream: r.upstream.clone(),
                    })?;
            router.add(
                r.hosts.clone(),
                r.path_prefix.clone(),
                Arc::new(Route {
                    name: r.name.clone(),
                    upstream,
                    headers: HeaderPolicy::compile(&r.headers),
                    cookies: CookiePolicy::compile(&r.cookies),
                    waf: RouteWaf::compile(&r.waf),
                    metrics: Default::default(),
                }),
            );
        }
        let listeners = listeners_by_port(&config, bound);
        let runtime = Runtime {
            protect,
            trusted: TrustedProxies::new(&config.server.trusted_proxies),
            redact_keys: config.log.redact_query_keys.clone(),
            default_headers: HeaderPolicy::default(),
            waf_rules,
            limits: config.limits.clone(),
            router: Arc::new(router),
            upstreams,
            listeners,
            tls,
            config: Arc::new(config),
        };
        Ok((runtime, tasks))
    }

    /// This generation with other TLS listener configs (certificate files changed on disk).
    pub fn with_tls(&self, tls: HashMap<String, Arc<ServerConfig>>) -> Self {
        Runtime {
            tls,
            ..self.clone()
        }
    }
}

/// The WAF rules of the generation built from `config`: the previous generation's own when the
/// rule files are unchanged (`RuleSet::load_or_reuse`), else compiled on a thread of its own.
/// The compile allocates and frees several times what the rules keep (parsed patterns, NFA
/// builders, byte-class and state tables); mimalloc gives each thread its own heap, so what it
/// frees there goes back to the allocator's arena when the thread ends, instead of staying as
/// half-used pages of the long-lived thread that loaded the config (docs/measurements/proxy.md,
/// memory).
pub fn compile_waf_rules(
    config: &Config,
    previous: Option<&Runtime>,
) -> Result<Arc<rampart_waf::RuleSet>, EdgeError> {
    let source = match &config.waf.rules_dir {
        Some(dir) => rampart_waf::RuleSource::Dir(dir.clone()),
        None => rampart_waf::RuleSource::Builtin,
    };
    let previous = previous.map(|p| &p.waf_rules);
    let load = || rampart_waf::RuleSet::load_or_reuse(&source, previous);
    let rules = std::thread::scope(|s| {
        match std::thread::Builder::new()
            .name("waf-compile".into())
            .spawn_scoped(s, load)
        {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: compile here.
            Err(_) => load(),
        }
    });
    rules.map_err(|e| EdgeError::WafRules {
        dir: config.waf.rules_dir.clone(),
        message: e.to_string(),
    })
}

/// The listeners by the local port their connections arrive on. A config has a few listeners
/// and every request looks its own up (`request::identify`): a scan of their ports compares a
/// few `u16`s where a `HashMap` hashed the port with SipHash first.
#[derive(Debug, Clone, Default)]
pub struct Listeners(Vec<(u16, Arc<ListenerInfo>)>);

impl Listeners {
    /// The listener on local port `port`.
    pub fn get(&self, port: &u16) -> Option<&Arc<ListenerInfo>> {
        self.0.iter().find(|(p, _)| p == port).map(|(_, l)| l)
    }
}

impl FromIterator<(u16, Arc<ListenerInfo>)> for Listeners {
    /// A later listener on a port already seen replaces the earlier one, as a `HashMap`'s
    /// collect did.
    fn from_iter<I: IntoIterator<Item = (u16, Arc<ListenerInfo>)>>(iter: I) -> Self {
        let mut all: Vec<(u16, Arc<ListenerInfo>)> = Vec::new();
        for (port, info) in iter {
            match all.iter_mut().find(|(p, _)| *p == port) {
                Some(slot) => slot.1 = info,
                None => all.push((port, info)),
            }
        }
        Listeners(all)
    }
}

/// Each listener by the local port its connections arrive on: the bound one from `bound` (by
/// name), else the configured one.
fn listeners_by_port(config: &Config, bound: &[(String, SocketAddr)]) -> Listeners {
    config
        .listeners
        .iter()
        .map(|l| {
            let info = ListenerInfo {
                name: l.name.clone(),
                tls: l.tls.as_ref().map(|t| t.profile),
                insecure_plaintext: l.insecure_plaintext,
                redirect_https_port: l.redirect_https_port,
                metrics: Default::default(),
            };
            let port = bound
                .iter()
                .find(|(name, _)| *name == l.name)
                .map_or(l.address.port(), |(_, a)| a.port());
            (port, Arc::new(info))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Runtime;
    use std::path::Path;
    use std::sync::Arc;

    fn config(extra: &str) -> crate::config::Config {
        let text = format!(
            "{extra}\n[[listeners]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\n\
             insecure_plaintext = true\n[[upstreams]]\nname = \"up\"\n\
             endpoints = [\"127.0.0.1:9\"]\n[[routes]]\nname = \"app\"\nhosts = [\"*\"]\n\
             upstream = \"up\"\n"
        );
        crate::config::parse(Path::new("edge.toml"), &text).expect("test config")
    }

    /// A reload leaves the compiled WAF rules shared when the rules are unchanged (whatever else
    /// changed), and compiles them when the rule files change.
    #[test]
    fn a_reload_shares_the_compiled_waf_rules_unless_the_rules_change() {
        let first = Runtime::build(config(""), None).expect("first generation");
        let (same, _) = Runtime::next(config("[server]\nthreads = 3"), None, Some(&first), &[])
            .expect("reload with other server settings");
        assert!(
            Arc::ptr_eq(&first.waf_rules, &same.waf_rules),
            "rules compiled again"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("own.toml"),
            "family = \"sqli\"\n[[rule]]\nid = 1\nmessage = \"m\"\nseverity = \"critical\"\n\
             targets = [\"args\"]\nregex = 'a+b'\n",
        )
        .expect("rule file");
        let waf = format!("[waf]\nrules_dir = {:?}", dir.path());
        let (own, _) = Runtime::next(config(&waf), None, Some(&same), &[]).expect("own rules");
        assert!(!Arc::ptr_eq(&same.waf_rules, &own.waf_rules));
        assert_eq!(own.waf_rules.len(), 1);
        let (back, _) = Runtime::next(config(""), None, Some(&own), &[]).expect("builtin again");
        assert!(!Arc::ptr_eq(&own.waf_rules, &back.waf_rules));
        assert!(back.waf_rules.len() > 100, "the builtin rules");
    }

    /// A listener is found by its port; a later listener on a port seen before replaces the
    /// earlier one (as the `HashMap` the lookup was before); an unknown port finds none.
    #[test]
    fn listeners_are_found_by_port_the_last_one_kept() {
        let info = |name: &str| {
            Arc::new(super::ListenerInfo {
                name: name.into(),
                tls: None,
                insecure_plaintext: true,
                redirect_https_port: 443,
                metrics: Default::default(),
            })
        };
        let all: super::Listeners = [(80, info("a")), (443, info("b")), (80, info("c"))]
            .into_iter()
            .collect();
        assert_eq!(all.get(&80).map(|l| l.name.as_str()), Some("c"));
        assert_eq!(all.get(&443).map(|l| l.name.as_str()), Some("b"));
        assert!(all.get(&8080).is_none());
    }
}
