//! Stage 4: limits once the route is known: the request head's size (414, 431), then load
//! shedding and the route's rate limits (503, 429, counted by the defences).

use super::context::RequestCtx;
use crate::config::LimitsConfig;
use crate::runtime::{Route, Runtime};
use crate::state::Shared;
use pingora_http::RequestHeader;
use rampart_protect::defences::Refusal;
use rampart_protect::denial::{Denial, DenialReason};
use rampart_protect::shed::InFlightGuard;
use std::net::IpAddr;

/// A request head over a configured limit.
pub fn head(req: &RequestHeader, limits: &LimitsConfig) -> Option<Denial> {
    let refuse = |reason| Some(Denial::new(reason));
    let uri_len = req.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > limits.max_uri_bytes {
        return refuse(DenialReason::UriTooLong);
    }
    if req.headers.len() > limits.max_headers {
        return refuse(DenialReason::TooManyHeaders);
    }
    let bytes: usize = req
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if bytes > limits.max_header_bytes {
        return refuse(DenialReason::HeaderTooLarge);
    }
    None
}

/// Load shedding and the route's local rate limit, under the settings of the request's
/// generation (`rt`); a refusal is already counted by the defences. On admission the in-flight
/// slot is held in the context until the request ends — unless a fleet limit is configured:
/// then the slot comes back as [`Admitted::Fleet`], for [`admit_fleet`] to keep or drop.
pub fn admit(shared: &Shared, ctx: &mut RequestCtx, rt: &Runtime, route: &Route) -> Admitted {
    let client = client(ctx);
    let defences = &shared.defences;
    match defences.admit_local(&rt.protect, Some(&route.name), client) {
        Ok(guard) if defences.has_fleet() => Admitted::Fleet(guard),
        Ok(guard) => {
            ctx.in_flight = Some(guard);
            Admitted::Yes
        }
        Err(refusal) => Admitted::No(refused(ctx, refusal)),
    }
}

/// What [`admit`] decided.
pub enum Admitted {
    Yes,
    /// Refused (already counted): answer it.
    No(Denial),
    /// Admitted locally; the fleet limit must still be asked ([`admit_fleet`]).
    Fleet(InFlightGuard),
}

/// The fleet limit, for a request [`admit`] admitted locally (`guard`, held in the context when
/// the fleet admits it too, dropped otherwise).
pub async fn admit_fleet(
    shared: &Shared,
    ctx: &mut RequestCtx,
    rt: &Runtime,
    route: &Route,
    guard: InFlightGuard,
) -> Option<Denial> {
    let client = client(ctx);
    match shared
        .defences
        .admit_fleet(&rt.protect, Some(&route.name), client)
        .await
    {
        Ok(()) => {
            ctx.in_flight = Some(guard);
            None
        }
        Err(refusal) => {
            drop(guard);
            Some(refused(ctx, refusal))
        }
    }
}

fn client(ctx: &RequestCtx) -> IpAddr {
    ctx.client_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// A refusal of the defences (counted by them already: the caller only answers it) as the
/// denial answered, its fields in the access log.
fn refused(ctx: &mut RequestCtx, refusal: Refusal) -> Denial {
    ctx.log_fields.extend(refusal.log_fields());
    ctx.log_fields.remove("rampart.denial.reason");
    Denial::new(refusal.reason)
        .status(refusal.status)
        .retry_after(refusal.retry_after_secs)
}
