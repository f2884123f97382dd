//! Process assembly: load config, build shared state, start the control plane (admin, SIGHUP,
//! certificate watcher) on its own thread, then hand the listeners to Pingora.

use crate::access_log;
use crate::config::{self, Config};
use crate::error::EdgeError;
use crate::listener::EdgeApp;
use crate::metrics::Metrics;
use crate::proxy::Edge;
use crate::runtime::Runtime;
use crate::state::{Bound, Shared};
use crate::tls::{self, EdgeIdentity};
use pingora_core::apps::HttpServerOptions;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::server::{Fds, ListenFds, ShutdownWatch};
use pingora_core::services::listening::Service;
use pingora_core::services::{ServiceReadyNotifier, ServiceWithDependents};
use rampart_ops::drain::{InFlight, Readiness};
use rampart_ops::reload::Generations;
use rampart_protect::conn_limit::pingora::ConnTracked;
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Warnings, plus reloads and the drain (`rampart_ops`) at INFO. Handshake failures from
/// scanners and probes are routine at an edge; they are counted in metrics rather than logged
/// one by one.
pub const DEFAULT_LOG: &str =
    "warn,rampart_ops=info,pingora_core::services::listening=off,pingora_core::protocols=error,rustls::msgs::handshake=error";

/// Binds the listeners and the admin address, loads and checks everything; returns the shared
/// state ready to serve.
pub fn prepare(config_path: &Path, config: Config) -> Result<Arc<Shared>, EdgeError> {
    tls::install_crypto_provider();
    for w in config::warnings(&config) {
        eprintln!("rampart-proxy: warning: {w}");
    }
    let bound = Bound::bind(&config)?;
    let metrics = Arc::new(Metrics::new());
    tls::client_hello_log::count_into(&metrics.client_hello_warnings);
    let identity = match &config.identity {
        Some(c) => Some(EdgeIdentity::start(c, metrics.clone())?),
        None => None,
    };
    let access_log = access_log::start(&config.log.access_log, config.log.queue_capacity, &metrics)
        .map_err(|source| EdgeError::AccessLog {
            dest: config.log.access_log.clone(),
            source,
        })?;
    let (runtime, tasks) = Runtime::next(config, identity.as_ref(), None, &bound.listeners)?;
    let first = runtime.protect.clone();
    let runtime = Arc::new(Generations::new(runtime, metrics.reloads.clone()));
    let events = access_log.clone();
    let generation = runtime.clone();
    let (defences, mut workers) = rampart_protect::defences::Defences::new(
        &first,
        &metrics.registry,
        Arc::new(move |line: &str| events.send_with(|b| b.extend_from_slice(line.as_bytes()))),
        Arc::new(move || generation.load().protect.clone()),
    )
    .map_err(EdgeError::Protect)?;
    workers.add(tasks);
    if let Some(identity) = &identity {
        identity.export_expiry_now();
    }
    Ok(Arc::new(Shared {
        defences,
        defence_workers: std::sync::Mutex::new(Some(workers)),
        runtime,
        metrics,
        identity,
        access_log,
        config_path: config_path.to_path_buf(),
        bound,
        serving: tokio::sync::Notify::new(),
        ready: Readiness::new(),
        in_flight: InFlight::new(),
    }))
}

/// `rampart-proxy run`: serves until SIGTERM (graceful, bounded) or SIGINT (fast).
pub fn run(config_path: &Path) -> Result<(), EdgeError> {
    let config = config::load(config_path)?;
    run_prepared(prepare(config_path, config)?)
}

/// [`run`] from the state [`prepare`] returned (its sockets already bound: `shared.bound`).
pub fn run_prepared(shared: Arc<Shared>) -> Result<(), EdgeError> {
    start_control_plane(shared.clone())?;
    serve(shared)
}

/// Starts Pingora with the shared state's listeners; never returns on success.
pub fn serve(shared: Arc<Shared>) -> Result<(), EdgeError> {
    let config = shared.runtime.load().config.clone();
    let conf = ServerConf {
        threads: config.server.threads,
        // One worker thread gains nothing from tokio's work-stealing scheduler and pays for its
        // cross-thread queues and wake-ups; Pingora's no-steal flavour is a plain current-thread
        // runtime. Several threads keep work stealing so connections spread over the workers.
        work_stealing: config.server.threads > 1,
        // SIGTERM: Pingora stops accepting and closes idle keep-alive connections, then waits
        // this long before cancelling what is left; `drain_on_sigterm` exits earlier once
        // nothing is in flight.
        grace_period_seconds: Some(config.server.shutdown_grace_seconds),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let edge = Edge {
        shared: shared.clone(),
    };
    let mut proxy = pingora_proxy::http_proxy(&server.configuration, edge);
    let defences = shared.defences.clone();
    proxy.h2_options = Some(defences.h2_options());
    let mut opts = HttpServerOptions::default();
    // CONNECT reaches our request_filter, which answers 405 with our headers.
    opts.allow_connect_method_proxying = true;
    proxy.server_options = Some(opts);
    // Pingora's own parse-error responses are replaced by hardened ones (see parser_errors).
    // ConnTracked is outermost: connection caps see the raw TCP stream, before TLS.
    let app = ConnTracked::new(
        EdgeApp::new(proxy, shared.clone()),
        defences.conn_filter.clone(),
    );
    let mut service = Service::new("rampart edge".to_string(), app);
    service.set_connection_filter(defences.conn_filter.clone());
    // TLS is terminated by EdgeApp with each listener's own config, so Pingora listens on TCP,
    // on the sockets `prepare` bound.
    let sockets = shared.bound.take_listeners();
    for (addr, _) in &sockets {
        service.add_tcp(&addr.to_string());
    }
    server.add_service(OnBound {
        inner: service,
        sockets,
        shared: shared.clone(),
    });
    eprintln!(
        "rampart-proxy: starting {} listener(s)",
        config.listeners.len()
    );
    server.run_forever()
}

/// Puts bound, non-blocking listening sockets into a table of Pingora's listening file
/// descriptors under their address: a Pingora listener for that address takes the socket
/// instead of binding one (Pingora's documented path for sockets passed in an upgrade).
pub fn hand_over(table: &ListenFds, sockets: Vec<(SocketAddr, std::net::TcpListener)>) {
    let mut table = table.lock();
    for (addr, socket) in sockets {
        table.add(addr.to_string(), socket.into_raw_fd());
    }
}

/// A table holding only `sockets`, for a Pingora service started on its own
/// (`start_service(Some(table), ..)`) rather than by a `Server`.
pub fn listen_fds(sockets: Vec<(SocketAddr, std::net::TcpListener)>) -> ListenFds {
    let table = ListenFds::new(Fds::new().into());
    hand_over(&table, sockets);
    table
}

/// A Pingora service that listens on sockets bound before it starts: Pingora's listeners take
/// a socket from the table of listening file descriptors (`ListenFds`, the one it passes on in
/// a graceful upgrade) when one is there for their address, and bind only otherwise. So the
/// sockets `prepare` bound (port 0 resolved) are put in that table under their address, then
/// the service starts.
struct OnBound<S> {
    inner: S,
    sockets: Vec<(SocketAddr, std::net::TcpListener)>,
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl<S: ServiceWithDependents> ServiceWithDependents for OnBound<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready: ServiceReadyNotifier,
    ) {
        if let Some(fds) = &fds {
            hand_over(fds, std::mem::take(&mut self.sockets));
        }
        self.shared.serving.notify_one();
        self.inner
            .start_service(fds, shutdown, listeners_per_fd, ready)
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.inner.listen_addresses()
    }
}

/// Admin listener, SIGHUP reload, certificate watcher and readiness, on one thread with its own
/// tokio runtime (Pingora's runtimes are created later by `run_forever`).
pub fn start_control_plane(shared: Arc<Shared>) -> Result<(), EdgeError> {
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("control-plane".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(format!("control plane runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (hup, term) = match (
                    signal(SignalKind::hangup()),
                    signal(SignalKind::terminate()),
                ) {
                    (Ok(h), Ok(t)) => (h, t),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = tx.send(Err(format!("signal handlers: {e}")));
                        return;
                    }
                };
                let admin = match shared
                    .bound
                    .take_admin()
                    .map(tokio::net::TcpListener::from_std)
                {
                    Some(Ok(l)) => Some(l),
                    Some(Err(e)) => {
                        let _ = tx.send(Err(format!("admin listener: {e}")));
                        return;
                    }
                    None => None,
                };
                let _ = tx.send(Ok(()));
                if let Some(listener) = admin {
                    let admin = rampart_ops::admin::Admin {
                        registry: shared.metrics.registry.clone(),
                        ready: shared.ready.clone(),
                    };
                    tokio::spawn(rampart_ops::admin::serve(listener, admin));
                }
                // The defences' workers (limiter sweepers, the alert and Redis workers) run
                // here, where a reload starts the new ones, rather than on a Pingora
                // background service of their own: one thread and one runtime less.
                let workers = (shared.defence_workers.lock())
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                for task in workers.map(|w| w.into_tasks()).unwrap_or_default() {
                    tokio::spawn(task);
                }
                tokio::spawn(crate::control::reload::on_sighup(shared.clone(), hup));
                tokio::spawn(crate::control::reload::watch_certificates(shared.clone()));
                tokio::spawn(drain_on_sigterm(shared.clone(), term));

                // Connections that arrive before Pingora's accept loops run wait in the bound
                // sockets' backlog: ready once Pingora has taken the sockets.
                shared.serving.notified().await;
                shared.ready.set(true);
                eprintln!("{}", shared.bound.ready_line());
                std::future::pending::<()>().await;
            });
        })
        .map_err(|e| EdgeError::ControlPlane(format!("thread: {e}")))?;
    rx.recv()
        .map_err(|e| EdgeError::ControlPlane(e.to_string()))?
        .map_err(EdgeError::ControlPlane)
}

/// SIGTERM: Pingora stops accepting new connections; once no request is in flight (or the
/// grace period is over, when Pingora exits on its own) the access log is flushed and the
/// process exits.
async fn drain_on_sigterm(shared: Arc<Shared>, term: tokio::signal::unix::Signal) {
    let drain = rampart_ops::drain::Drain {
        ready: shared.ready.clone(),
        in_flight: shared.in_flight.clone(),
        // Let Pingora see the signal and stop handing out new work first.
        settle: Duration::from_millis(200),
        name: "rampart-proxy",
    };
    let log = shared.access_log.clone();
    rampart_ops::drain::on_sigterm(term, drain, move || log.flush(Duration::from_secs(2))).await
}
