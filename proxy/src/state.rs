//! State shared by the request path and the control plane (admin, reload).

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::error::EdgeError;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::tls::EdgeIdentity;
use rampart_ops::drain::{InFlight, Readiness};
use rampart_ops::reload::Generations;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct Shared {
    /// The live generation: routes, upstreams, policies, WAF rules, the listeners' TLS configs
    /// and the defences' settings, published together by one swap (see `control::reload`).
    pub runtime: Arc<Generations<Runtime>>,
    pub metrics: Arc<Metrics>,
    /// The edge's SVID and its certificates from the built-in CA, when `[identity]` is set.
    pub identity: Option<Arc<EdgeIdentity>>,
    pub access_log: AccessLog,
    pub config_path: PathBuf,
    /// The listening sockets, bound before anything else starts; a reload keeps them.
    pub bound: Bound,
    /// Notified when Pingora takes the bound listeners (then `/readyz` and the ready line).
    pub serving: tokio::sync::Notify,
    /// `/readyz`: set once every listener accepts, cleared by the SIGTERM drain.
    pub ready: Readiness,
    /// Requests between `request_filter` and `logging` (the SIGTERM drain waits for zero).
    pub in_flight: InFlight,
    /// The DoS defences' state (open connections, requests in flight, the fleet limiter) and
    /// the one denial counter, built at start (see `server::prepare`). Their settings are the
    /// generation's (`Runtime::protect`): a request reads those of its own generation, a new
    /// connection those of the current one.
    pub defences: Arc<rampart_protect::defences::Defences>,
    /// Their background workers, taken once by `server::start_control_plane`.
    pub defence_workers: std::sync::Mutex<Option<rampart_protect::defences::DefenceWorkers>>,
}

/// The sockets the edge listens on, bound at start (`control::server::prepare`) before the
/// identity, the access log or Pingora start. A listener (or the admin address) configured with
/// port 0 gets a free port from the kernel: it is known from here on, and the ready line names
/// every bound address ([`Bound::ready_line`]). Listeners cannot change on reload, so a reload
/// keeps these sockets.
pub struct Bound {
    /// Listener name → bound address, in config order.
    pub listeners: Vec<(String, SocketAddr)>,
    /// The admin listener's bound address (when `[admin] enabled`).
    pub admin: Option<SocketAddr>,
    /// The sockets, until `control::server::serve` hands the listeners to Pingora and the
    /// control plane serves the admin one.
    pub sockets: Mutex<BoundSockets>,
}

/// The bound sockets not yet handed to their server.
#[derive(Default)]
pub struct BoundSockets {
    /// `(bound address, socket)`, in config order.
    pub listeners: Vec<(SocketAddr, TcpListener)>,
    pub admin: Option<TcpListener>,
}

impl Bound {
    /// Binds every listener and the admin address of `config`, in non-blocking mode (they are
    /// served from tokio). Fails naming the listener and address that could not be bound.
    pub fn bind(config: &Config) -> Result<Bound, EdgeError> {
        let open = |listener: &str, address: SocketAddr| {
            TcpListener::bind(address)
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .and_then(|s| s.local_addr().map(|a| (a, s)))
                .map_err(|source| EdgeError::Bind {
                    listener: listener.to_string(),
                    address,
                    source,
                })
        };
        let mut sockets = BoundSockets::default();
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let (addr, socket) = open(&l.name, l.address)?;
            listeners.push((l.name.clone(), addr));
            sockets.listeners.push((addr, socket));
        }
        let admin = match config.admin.enabled {
            true => {
                let (addr, socket) = open("admin", config.admin.address)?;
                sockets.admin = Some(socket);
                Some(addr)
            }
            false => None,
        };
        Ok(Bound {
            listeners,
            admin,
            sockets: Mutex::new(sockets),
        })
    }

    /// `rampart-proxy: ready listener.<name>=<address> … admin=<address>`: every bound
    /// address, so a supervisor or a test that configured port 0 learns the ports.
    pub fn ready_line(&self) -> String {
        let mut line = String::from("rampart-proxy: ready");
        for (name, addr) in &self.listeners {
            line += &format!(" listener.{name}={addr}");
        }
        if let Some(addr) = self.admin {
            line += &format!(" admin={addr}");
        }
        line
    }

    /// The listeners' sockets (`(bound address, socket)`, in config order), for Pingora; taken
    /// once.
    pub fn take_listeners(&self) -> Vec<(SocketAddr, TcpListener)> {
        std::mem::take(
            &mut self
                .sockets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .listeners,
        )
    }

    /// The admin socket, for the control plane; taken once.
    pub fn take_admin(&self) -> Option<TcpListener> {
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admin
            .take()
    }
}
