//! Stage 10: the end of a request: its metrics and its JSON access-log line (the record and
//! its redaction are in [`access_log`](crate::access_log)).

use super::context::{inet, RequestCtx};
use crate::access_log::{
    cap, cap_cow, redact_query, AccessRecord, ServerAddr, Timestamp, MAX_PATH, MAX_UA,
};
use crate::metrics::status_class;
use crate::state::Shared;
use crate::tls::TlsInfo;
use pingora_error::Error;
use pingora_proxy::Session;
use rampart_ops::json_log::millis;

/// The end of a request: request count and duration metrics, the active gauges, and its
/// access-log line.
pub fn finish(shared: &Shared, session: &Session, e: Option<&Error>, ctx: &mut RequestCtx) {
    let m = &shared.metrics;
    let status = session
        .response_written()
        .map(|r| r.status.as_u16())
        .unwrap_or(0);
    let elapsed = ctx.start.elapsed();
    match &ctx.route {
        Some(r) => r.metrics.finish(m, &r.name, status, elapsed.as_secs_f64()),
        None => {
            m.requests
                .with_label_values(&["", status_class(status)])
                .inc();
            m.duration
                .with_label_values(&[""])
                .observe(elapsed.as_secs_f64());
        }
    }
    if ctx.counted_active {
        if let Some(l) = &ctx.listener {
            l.metrics.active_requests(m, &l.name).dec();
        }
        shared.in_flight.leave();
    }
    let record = access_record(session, e, ctx, status, elapsed);
    shared.access_log.send_with(|buf| record.write(buf));
}

fn tls_info(session: &Session) -> Option<TlsInfo<'_>> {
    session
        .digest()
        .and_then(|d| d.ssl_digest.as_deref())
        .map(TlsInfo::from_digest)
}

fn access_record<'a>(
    session: &'a Session,
    e: Option<&Error>,
    ctx: &'a mut RequestCtx,
    status: u16,
    elapsed: std::time::Duration,
) -> AccessRecord<'a> {
    let answer = match (&ctx.denial, ctx.answered) {
        (Some(d), _) => Some((d.stage(), d.label())),
        (None, Some(answered)) => Some(("edge", answered)),
        (None, None) => None,
    };
    if let Some((by, reason)) = answer {
        let extra = &mut ctx.log_fields;
        extra.insert("rampart.denial.by".into(), by.into());
        extra.insert("rampart.denial.reason".into(), reason.into());
    }
    let ctx = &*ctx;
    let req = session.req_header();
    let redact: &[String] = ctx
        .runtime
        .as_ref()
        .map(|r| r.redact_keys.as_slice())
        .unwrap_or(&[]);
    let tls = tls_info(session);
    AccessRecord {
        timestamp: Timestamp::at(ctx.started_at),
        request_id: ctx.request_id(),
        listener: ctx.listener.as_ref().map_or("", |l| l.name.as_str()),
        client_address: ctx.client_ip,
        client_port: ctx
            .peer
            .filter(|p| Some(p.ip()) == ctx.client_ip)
            .map(|p| p.port()),
        peer_address: ctx.peer.map(|p| p.ip()),
        peer_port: ctx.peer.map(|p| p.port()),
        server_address: if ctx.host.is_empty() {
            ServerAddr::Local(inet(session.server_addr()).map(|s| s.ip()))
        } else {
            ServerAddr::Host(&ctx.host)
        },
        method: cap(req.method.as_str(), 32),
        scheme: if ctx.https { "https" } else { "http" },
        path: cap(req.uri.path(), MAX_PATH),
        query: req
            .uri
            .query()
            .map(|q| cap_cow(redact_query(q, redact), MAX_PATH)),
        route: ctx.route.as_ref().map_or("", |r| r.name.as_str()),
        protocol: match req.version {
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_09 => "0.9",
            _ => "1.1",
        },
        user_agent: req
            .headers
            .get(http::header::USER_AGENT)
            .map(|v| cap_cow(String::from_utf8_lossy(v.as_bytes()), MAX_UA))
            .unwrap_or_default(),
        status,
        request_body_size: session.body_bytes_read(),
        response_body_size: session.body_bytes_sent(),
        duration_ms: millis(elapsed),
        upstream_address: ctx.upstream_addr,
        upstream_connect_ms: ctx.connect_ms,
        upstream_response_ms: ctx.response_ms,
        tls_version: tls.map(|t| t.version),
        tls_cipher: tls.map(|t| t.cipher),
        tls_server_name: tls.and_then(|t| t.server_name),
        error: e.map(|e| e.etype().as_str()),
        waf: ctx.waf_log.as_ref(),
        extra: (!ctx.log_fields.is_empty()).then_some(&ctx.log_fields),
    }
}
