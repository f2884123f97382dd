//! The request policies one generation compiles from the config (held by
//! [`crate::runtime::Runtime`] and its routes) and how each applies to a request or response:
//!
//! - [`route`]: the router (host pattern + path prefix → route);
//! - [`forward`]: trusted proxies, the client address and the forwarding headers sent upstream;
//! - [`headers`]: the secure response headers and the headers stripped;
//! - [`cookies`]: cookie hardening (`Secure`, `HttpOnly`, `SameSite`);
//! - [`header_edit`]: how the edge edits Pingora's request and response heads.
//!
//! They depend only on [`crate::config`] and each other: the listener (error replies) and the request stages
//! use them; nothing here reads the live generation.

pub mod cookies;
pub mod forward;
pub mod header_edit;
pub mod headers;
pub mod route;
