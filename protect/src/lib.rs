//! rampart-protect: DoS defences, rate limits and denial events (S.N.4,
//! S.N.12), shared by the edge (rampart-proxy) and the mesh sidecar.
//!
//! Building blocks:
//! - [`conn_limit`]: connection caps before the TLS handshake (global, per IP, new
//!   connections per IP), with eviction of stalled connections at the per-IP cap.
//! - [`slow_client`]: whole-header deadline and minimum body rate (stream wrapper).
//! - [`h2_flood`]: HTTP/2 stream limits and the rapid-reset defence.
//! - [`shed`]: load shedding on in-flight requests.
//! - [`ratelimit`]: per-client GCRA limits per route.
//! - [`redis_limit`]: fleet-wide GCRA in Redis behind the local limiter.
//! - [`denial`]: the one denial event type of the edge and the sidecar.
//! - [`report`]: the denial counter and the alerter each denial is fed to.
//! - [`alert`]: webhook alerts when denials of a reason cross a threshold.
//! - [`defences`]: all of the above from one `[protect]` config, the
//!   request-path check and the background workers.
//!
//! Feature `pingora` adds the Pingora glue: the listener's `ConnectionFilter`
//! and the `ServerApp` wrapper of the connection caps (`conn_limit::pingora`),
//! the HTTP/2 reset-flood stream guard, the h2 server options, Pingora's
//! stream traits on the stream guards. Without it the crate does not link
//! Pingora.
//!
//! # Wiring in the edge (see `proxy/tests/protect_edge.rs` for a working minimal edge)
//! 1. At load: `let (defences, workers) = Defences::new(&first, &metrics.registry,
//!    event_sink, current_settings)?;` then spawn `workers.into_tasks()` on a
//!    tokio runtime that lives as long as the process (the edge uses its control
//!    plane's, where reloads spawn the new settings' tasks too).
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
#![forbid(unsafe_code)]

pub mod alert;
pub mod client_key;
pub mod conn_limit;
pub mod defences;
pub mod denial;
pub mod h2_flood;
pub mod invalid;
pub mod io_delegate;
pub mod ratelimit;
pub mod redis_limit;
pub mod report;
pub mod shed;
pub mod slow_client;
