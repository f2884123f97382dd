//! State shared by the request path and the control plane (admin, reload).

use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::tls::EdgeIdentity;
use rampart_ops::drain::{InFlight, Readiness};
use rampart_ops::reload::Generations;
use std::path::PathBuf;
use std::sync::Arc;

pub struct Shared {
    /// The live generation: routes, upstreams, policies, WAF rules, the listeners' TLS configs
    /// and the defences' settings, published together by one swap (see `control::reload`).
    pub runtime: Arc<Generations<Runtime>>,
    pub metrics: Arc<Metrics>,
    /// The edge's SVID and its certificates from the built-in CA, when `[identity]` is set.
    pub identity: Option<Arc<EdgeIdentity>>,
    pub access_log: AccessLog,
    pub config_path: PathBuf,
    /// `/readyz`: set once every listener accepts, cleared by the SIGTERM drain.
    pub ready: Readiness,
    /// Requests between `request_filter` and `logging` (the SIGTERM drain waits for zero).
    pub in_flight: InFlight,
    /// The DoS defences' state (open connections, requests in flight, the fleet limiter) and
    /// the one denial counter, built at start (see `server::prepare`). Their settings are the
    /// generation's (`Runtime::protect`): a request reads those of its own generation, a new
    /// connection those of the current one.
    pub defences: Arc<rampart_protect::defences::Defences>,
    /// Their background workers, taken once by `server::serve`.
    pub defence_workers: std::sync::Mutex<Option<rampart_protect::defences::DefenceWorkers>>,
}
