//! The control plane, off the request path: process assembly and serving ([`server`]), reloads
//! of config and certificates ([`reload`]), the allocator's settings ([`allocator`]). The admin
//! endpoints, the reload triggers, the SIGTERM drain and the log writer are `rampart_ops`'s,
//! shared with the sidecar and the CA.

pub mod allocator;
pub mod reload;
pub mod server;
