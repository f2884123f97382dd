//! rampart-ops: the process plumbing every Rampart binary (edge proxy, sidecar, CA) shares, so
//! none of them writes its own.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`config`] | TOML loading into `deny_unknown_fields` types, errors naming file, line and field |
//! | [`reload`] | the reload driver: SIGHUP and file-change triggers, all-or-nothing generations, the reload metric |
//! | [`admin`] | the admin HTTP server on hyper: `/metrics`, `/healthz`, `/readyz` |
//! | [`metrics`] | Prometheus registration helpers and the text rendering |
//! | [`json_log`] | a JSON-lines writer thread generic over the record type (access logs, events) |
//! | [`drain`] | readiness, the in-flight counter and the SIGTERM drain |
//! | [`logging`] | the one `tracing` setup (ANSI colour only when stderr is a terminal) |
//!
//! A binary typically: [`logging::init`], [`config::load_toml`] its config, registers its
//! metrics with [`metrics`], starts [`admin::serve`], [`reload::on_signal`] /
//! [`reload::watch_files`] with a closure that builds the next [`reload::Generations`] value,
//! and [`drain::on_sigterm`].
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod drain;
pub mod json_log;
pub mod logging;
pub mod metrics;
pub mod reload;
#[cfg(feature = "testing")]
pub mod testing;
