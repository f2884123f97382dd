//! State shared by the request path and the control plane (admin, reload).

use crate::metrics::Metrics;
use crate::request::access_log::AccessLog;
use crate::runtime::Runtime;
use crate::tls::ListenerTlsState;
use arc_swap::ArcSwap;
use rampart_ops::drain::{InFlight, Readiness};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub metrics: Arc<Metrics>,
    /// Listener name → its live certificates and profile.
    pub tls: HashMap<String, Arc<ListenerTlsState>>,
    pub access_log: AccessLog,
    pub config_path: PathBuf,
    /// `/readyz`: set once every listener accepts, cleared by the SIGTERM drain.
    pub ready: Readiness,
    /// Requests between `request_filter` and `logging` (the SIGTERM drain waits for zero).
    pub in_flight: InFlight,
    /// DoS defences and the one denial counter (built at start, see `server::prepare`; a SIGHUP
    /// reloads them in place, see `Defences::prepare_reload`).
    pub defences: Arc<rampart_protect::defences::Defences>,
    /// Their background workers, taken once by `server::serve`.
    pub defence_workers: std::sync::Mutex<Option<rampart_protect::defences::DefenceWorkers>>,
}
