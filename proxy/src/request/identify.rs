//! Stage 1: which listener the request came in on, whether over TLS, who the client is (a
//! trusted proxy may say), and its request id.

use super::context::{inet, is_sane_request_id, RequestCtx};
use crate::policy::header_edit::X_REQUEST_ID;
use crate::runtime::Runtime;
use crate::state::Shared;
use pingora_proxy::Session;

/// Identifies listener, TLS and client; fills the context and counts the request as active.
pub fn identify(shared: &Shared, session: &Session, ctx: &mut RequestCtx, rt: &Runtime) {
    let local = inet(session.server_addr());
    ctx.listener = local.and_then(|a| rt.listeners.get(&a.port()).cloned());
    ctx.https = ctx.listener.as_ref().is_some_and(|l| l.tls.is_some());
    ctx.peer = inet(session.client_addr());
    if let Some(peer) = ctx.peer {
        ctx.client_ip = Some(rt.trusted.client_ip(peer.ip(), session.req_header()));
        // A trusted proxy's request id is kept so one id follows the request end to end.
        if rt.trusted.contains(peer.ip()) {
            if let Some(id) = session
                .req_header()
                .headers
                .get(&X_REQUEST_ID)
                .filter(|v| v.to_str().is_ok_and(is_sane_request_id))
            {
                ctx.set_request_id(id.clone());
            }
        }
    }
    if let Some(l) = &ctx.listener {
        l.metrics.active_requests(&shared.metrics, &l.name).inc();
        shared.in_flight.enter();
        ctx.counted_active = true;
    }
}
