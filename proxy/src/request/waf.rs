//! Stage 6: the route's WAF policy over request line, headers, cookies, query and the body read
//! in stage 5; the decision is counted (`rampart_waf_decisions_total`) and logged
//! (`rampart.waf.*`), and a block in `block` mode is a 403. A request the WAF could not inspect
//! whole (body past `inspect_limit`, fields past the WAF's limits) is refused with 413
//! `body_uninspected` in `block` mode unless the route sets `insecure_pass_uninspected_body`;
//! logged (`rampart.waf.uninspected`) and counted (`rampart_waf_uninspected_total`) either way.

use super::body::BodyReplay;
use super::context::RequestCtx;
use crate::access_log::{cap, WafLog};
use crate::config::WafMode;
use crate::runtime::{Route, RouteWaf, Runtime};
use crate::state::Shared;
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use rampart_protect::denial::{Denial, DenialReason};
use rampart_waf::{RuleSet, Verdict};

/// Runs the route's WAF policy; logs and counts the decision. `Some` blocks the request.
pub fn check(
    shared: &Shared,
    session: &Session,
    ctx: &mut RequestCtx,
    rt: &Runtime,
    route: &Route,
    body: &BodyReplay,
) -> Option<Denial> {
    let mode = route.waf.mode;
    if mode == WafMode::Off {
        ctx.waf_log = Some(WafLog {
            action: "off",
            ..WafLog::default()
        });
        return None;
    }
    let verdict = inspect(&rt.waf_rules, session.req_header(), body, &route.waf);
    let action = match (verdict.block, mode) {
        (true, WafMode::Block) => "block",
        (true, _) => "detect",
        (false, _) => "pass",
    };
    let family = top_family(&verdict);
    shared
        .metrics
        .count_waf_decision(action, rampart_protect::denial::family_label(family));
    let log = ctx.waf_log.insert(log_fields(action, &verdict, body));
    log.mode = Some(mode.as_str());
    if action == "block" {
        let mut denial = Denial::new(DenialReason::WafBlock);
        denial.family = family.map(str::to_string);
        return Some(denial);
    }
    let cause = uninspected(body, &verdict)?;
    let action = match (route.waf.pass_uninspected, mode) {
        (true, _) => "passed",
        (false, WafMode::Block) => "refused",
        (false, _) => "detect",
    };
    shared
        .metrics
        .waf_uninspected
        .with_label_values(&[route.name.as_str(), cause, action])
        .inc();
    log.uninspected = Some(cause);
    log.uninspected_action = Some(action);
    (action == "refused").then(|| Denial::new(DenialReason::BodyUninspected))
}

/// Why part of the request would reach the upstream uninspected: `inspect_limit` (the body
/// goes on past the bytes read for inspection) or `waf_limits` (the WAF's own limits cut
/// inspection short: more fields than `max_fields`, nesting deeper than `max_depth`).
fn uninspected(body: &BodyReplay, verdict: &Verdict) -> Option<&'static str> {
    if body.partial {
        Some("inspect_limit")
    } else if verdict.truncated {
        Some("waf_limits")
    } else {
        None
    }
}

/// The request line's protocol version, as the WAF's rules name it.
fn http_version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_11 => "HTTP/1.1",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "",
    }
}

/// The WAF's view of this request.
pub fn inspect(rules: &RuleSet, req: &RequestHeader, body: &BodyReplay, waf: &RouteWaf) -> Verdict {
    // The WAF reads the header map's own names and values; the list of them lives on the stack
    // for the usual head (no allocation per request), in a `Vec` past that.
    let mut small: [(&str, &[u8]); 24] = [("", &[]); 24];
    let large: Vec<(&str, &[u8])>;
    let pairs = req.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes()));
    let headers: &[(&str, &[u8])] = if req.headers.len() <= small.len() {
        let mut n = 0;
        for (slot, pair) in small.iter_mut().zip(pairs) {
            *slot = pair;
            n += 1;
        }
        &small[..n]
    } else {
        large = pairs.collect();
        &large
    };
    let request = rampart_waf::Request {
        method: req.method.as_str(),
        path: req.uri.path(),
        query: req.uri.query().unwrap_or(""),
        version: http_version(req.version),
        headers,
        body: body.inspected(),
        body_truncated: body.partial,
    };
    rules.inspect(&request, &waf.policy)
}

/// The family of the highest-scoring match (the denial's `family` label).
pub fn top_family(v: &Verdict) -> Option<&'static str> {
    v.matches
        .iter()
        .max_by_key(|m| m.score)
        .map(|m| m.family.as_str())
}

/// `rampart.waf.*` access-log fields (mode and uninspected parts are the caller's).
pub fn log_fields(action: &'static str, v: &Verdict, body: &BodyReplay) -> WafLog {
    let mut targets: Vec<&str> = v.matches.iter().map(|m| m.target.as_str()).collect();
    targets.dedup();
    WafLog {
        action,
        score: Some(v.score),
        rule_ids: Some(v.matches.iter().map(|m| m.rule_id).collect()),
        targets: Some(
            targets
                .into_iter()
                .map(|t| cap(t, 128).to_owned())
                .collect(),
        ),
        body: body.partial.then_some("partial"),
        // The engine's own per-value / field limits cut inspection short.
        truncated: v.truncated,
        ..WafLog::default()
    }
}
