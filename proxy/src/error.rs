//! Why the edge could not start, or refused a reload: one typed error, each variant naming what
//! to fix (the file, listener, upstream or table), so `rampart-proxy` can print it and a reload
//! refusal can say why.

use crate::config::ConfigError;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// The config file: unreadable, unparsable, or inconsistent (file, line, field).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener's certificates or TLS profile.
    #[error("listener `{listener}`: {message}")]
    ListenerTls { listener: String, message: String },
    /// A listener address cannot be bound (in use, not ours).
    #[error("listener `{listener}` cannot bind {address}: {source}")]
    Bind {
        listener: String,
        address: SocketAddr,
        source: std::io::Error,
    },
    /// An upstream's endpoints do not resolve or its CA file cannot be read.
    #[error("upstream `{upstream}`: {message}")]
    Upstream { upstream: String, message: String },
    /// A route names an upstream the runtime does not have.
    #[error("route `{route}`: no upstream `{upstream}`")]
    RouteUpstream { route: String, upstream: String },
    /// The WAF rule files.
    #[error("waf rules{}: {message}", dir.as_ref().map(|d| format!(" `{}`", d.display())).unwrap_or_default())]
    WafRules {
        dir: Option<PathBuf>,
        message: String,
    },
    /// The access log destination cannot be opened.
    #[error("access log `{dest}`: {source}")]
    AccessLog {
        dest: String,
        source: std::io::Error,
    },
    /// The `[protect]` tables.
    #[error("[protect]: {0}")]
    Protect(String),
    /// A reload changed what is bound at start.
    #[error("listener names, addresses, tls on/off or http2 changed: these need a restart")]
    ListenersChanged,
    /// The control plane (admin listener, signal handlers, its thread) could not start.
    #[error("control plane: {0}")]
    ControlPlane(String),
    /// The edge's `[identity]` (its SVID from the built-in CA) or a certificate from the CA.
    #[error("[identity]: {0}")]
    Identity(String),
    /// A reload changed the `[identity]` table, which is bound at start.
    #[error(
        "[identity] changed: it is bound at start (its SVID and renewals), restart to change it"
    )]
    IdentityChanged,
}

impl EdgeError {
    /// A short label for what failed (logs, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            EdgeError::Config(_) => "config",
            EdgeError::ListenerTls { .. } => "tls",
            EdgeError::Bind { .. } => "bind",
            EdgeError::Upstream { .. } | EdgeError::RouteUpstream { .. } => "upstream",
            EdgeError::WafRules { .. } => "waf",
            EdgeError::AccessLog { .. } => "access_log",
            EdgeError::Protect(_) => "protect",
            EdgeError::ListenersChanged => "listeners_changed",
            EdgeError::ControlPlane(_) => "control_plane",
            EdgeError::Identity(_) | EdgeError::IdentityChanged => "identity",
        }
    }
}
