//! DoS defences, rate limits and denial alerting (S.N.4, S.N.12).
//!
//! Self-contained building blocks the proxy wires into its Pingora phases:
//! - [`conn_limit`](crate::protect::conn_limit): connection caps before the TLS handshake (`ConnectionFilter`).
//! - [`slow_client`](crate::protect::slow_client): whole-header deadline and minimum body rate (stream wrapper).
//! - [`h2_flood`](crate::protect::h2_flood): HTTP/2 stream limits and the rapid-reset defence.
//! - [`shed`](crate::protect::shed): load shedding on in-flight requests (`request_filter`, first).
//! - [`ratelimit`](crate::protect::ratelimit): per-client GCRA limits per route (`request_filter`).
//! - [`redis_limit`](crate::protect::redis_limit): fleet-wide GCRA in Redis behind the local limiter.
//! - [`denial`](crate::protect::denial): one denial event type, its metric and its event line.
//! - [`alert`](crate::protect::alert): webhook alerts when denials of a reason cross a threshold.
//! - [`defences`](crate::protect::defences): all of the above from one `[protect]` config, the
//!   request-path check and one background service for the workers.
//!
//! # Wiring (see `tests/protect_edge.rs` for a working minimal edge)
//! 1. At load: `let (defences, workers) = Defences::new(&cfg.protect,
//!    &metrics.registry, route_names, event_sink)?;` then
//!    `server.add_service(background_service("rampart protect", workers))`.
//! 2. Service: `let mut proxy = http_proxy(&conf, edge);
//!    proxy.h2_options = Some(defences.h2_options());` wrap the app as
//!    `ConnTracked::new(EdgeApp::new(proxy, ..), defences.conn_filter.clone())`
//!    (outermost, so it sees the raw TCP stream) and
//!    `service.set_connection_filter(defences.conn_filter.clone())`.
//! 3. In the app wrapper, right after TLS and before the HTTP layer, for new
//!    (not kept-alive) connections: `stream = defences.guard_stream(stream)`.
//! 4. `request_filter`, once the route is known:
//!    `defences.admit_request(route, client_ip).await` → keep the
//!    `InFlightGuard` in the request context; on `Err(refusal)` answer
//!    `refusal.status` with `Retry-After: refusal.retry_after_secs` and add
//!    `refusal.log_fields()` to the access-log line (already counted).
//! 5. Every other denial (WAF block, 413/414/431, bad request):
//!    `defences.denials.record(&Denial::new(reason).route(..).family(..))`.

pub mod alert;
pub mod client_key;
pub mod conn_limit;
pub mod defences;
pub mod denial;
pub mod h2_flood;
pub(crate) mod io_delegate;
pub mod ratelimit;
pub mod redis_limit;
pub mod shed;
pub mod slow_client;
