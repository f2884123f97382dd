//! Stage 4: limits once the route is known: the request head's size (414, 431), then load
//! shedding and the route's rate limits (503, 429, counted by the defences).

use super::context::RequestCtx;
use crate::config::LimitsConfig;
use crate::runtime::Route;
use crate::state::Shared;
use pingora_http::RequestHeader;
use rampart_protect::denial::{Denial, DenialReason};
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

/// Load shedding and rate limits, under the settings of the request's generation; a refusal
/// is already counted by `admit_request`. On admission the in-flight slot is held in the
/// context until the request ends.
pub async fn admit(shared: &Shared, ctx: &mut RequestCtx, route: &Route) -> Option<Denial> {
    let client = ctx.client_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let settings = match &ctx.runtime {
        Some(runtime) => runtime.protect.clone(),
        None => shared.runtime.load().protect.clone(),
    };
    match shared
        .defences
        .admit_request(&settings, Some(&route.name), client)
        .await
    {
        Ok(guard) => {
            ctx.in_flight = Some(guard);
            None
        }
        Err(refusal) => {
            ctx.log_fields.extend(refusal.log_fields());
            ctx.log_fields.remove("rampart.denial.reason");
            // Counted by admit_request already: the caller only answers it.
            Some(
                Denial::new(refusal.reason)
                    .status(refusal.status)
                    .retry_after(refusal.retry_after_secs),
            )
        }
    }
}
