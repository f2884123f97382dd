//! The request policies one generation compiles from the config (held by
//! [`crate::runtime::Runtime`] and its routes) and how each applies to a request or response:
//!
//! - [`route`]: the router (host pattern + path prefix → route);
//! - [`forward`]: trusted proxies, the client address and the forwarding headers sent upstream;
//! - [`headers`]: the secure response headers and the headers stripped;
//! - [`cookies`]: cookie hardening (`Secure`, `HttpOnly`, `SameSite`).
//!
//! They depend only on [`crate::config`]: the listener (error replies) and the request stages
//! use them; nothing here reads the live generation.

pub mod cookies;
pub mod forward;
pub mod headers;
pub mod route;
