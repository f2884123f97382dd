//! The request's path through the edge, one module per stage, in the order `proxy.rs` runs
//! them:
//!
//! 1. [`identify`]: listener, TLS, client address, request id;
//! 2. [`validate`]: framing and host (malformed or ambiguous requests get 400, never forwarded);
//! 3. route: host + path prefix → route (404 otherwise; the router is
//!    [`crate::policy::route`]); plain listeners redirect instead;
//! 4. [`limits`]: head limits (414/431), load shedding and rate limits (503/429);
//! 5. [`body`]: the body read before forwarding (413 over `max_body`), replayed upstream
//!    (with [`h1_rebuild`] for long chunked bodies);
//! 6. [`waf`]: the route's WAF policy (403);
//! 7. forward: the client address and forwarding headers sent upstream
//!    ([`crate::policy::forward`]);
//! 8. the response's secure headers and hardened cookies ([`crate::policy::headers`],
//!    [`crate::policy::cookies`]; [`crate::policy::header_edit`]: how the edge edits
//!    Pingora's heads);
//! 9. [`respond`]: answers the edge writes itself (denials, redirects, error pages);
//! 10. [`log`]: metrics and the JSON access-log line ([`crate::access_log`]: the record,
//!     redaction).
//!
//! [`context`] holds the per-request state the stages share, including the refusal
//! ([`rampart_protect::denial::Denial`]) or the other answer the edge gave itself.

pub mod body;
pub mod context;
pub mod h1_rebuild;
pub mod identify;
pub mod limits;
pub mod log;
pub mod respond;
pub mod validate;
pub mod waf;

pub use context::RequestCtx;
