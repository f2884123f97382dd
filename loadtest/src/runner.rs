//! Drives a scenario: legitimate clients (open or closed loop) alongside the
//! attack, every loop bounded by the deadline and a request count.
//!
//! Open loop: request i is due at `start + i / rate`; its latency is measured
//! from that intended time, so a slow server cannot hide its queueing delay
//! by slowing the generator down (no coordinated omission).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::http::{Client, Prepared, Request};
use crate::reload::ChangePlan;
use crate::report::Report;
use crate::slowloris::{self, SlowStats};
use crate::stats::{ErrorKind, Outcome, Recorder};
use crate::target::Target;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Legit traffic only (the baseline).
    Benign,
    /// Replays corpus requests from the attack sources.
    Attack,
    /// Floods from the attack sources at --attack-rate each.
    Flood,
    /// Many connections sending their headers slowly.
    Slowloris,
    /// Legit traffic while the edge's config is replaced and reloaded (SIGHUP) again and again,
    /// then SIGTERM: see [`crate::reload`].
    Reload,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Benign => "benign",
            Self::Attack => "attack",
            Self::Flood => "flood",
            Self::Slowloris => "slowloris",
            Self::Reload => "reload",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadMode {
    /// Constant arrival rate, requests per second (all sources together).
    Open { rate: f64 },
    /// Fixed number of clients, each sending its next request on an answer.
    Closed { concurrency: usize },
}

impl std::fmt::Display for LoadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open { rate } => write!(f, "open loop {rate} req/s"),
            Self::Closed { concurrency } => write!(f, "closed loop, {concurrency} clients"),
        }
    }
}

/// Everything a run needs; built by the CLI or a test.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub scenario: Scenario,
    /// Hard limit on the run's length.
    pub duration: Duration,
    /// Hard limit on requests per class.
    pub max_requests: u64,
    pub request_timeout: Duration,
    /// Connections per source address and class.
    pub max_connections: usize,
    pub legit_sources: Vec<IpAddr>,
    pub legit_mode: LoadMode,
    pub legit_requests: Vec<Request>,
    pub attack_sources: Vec<IpAddr>,
    /// Per attack source, requests per second (flood, attack).
    pub attack_rate: f64,
    pub attack_requests: Vec<Request>,
    pub slowloris_connections: usize,
    pub slowloris_interval: Duration,
    /// The changes of the `reload` scenario.
    pub change: Option<ChangePlan>,
}

impl Plan {
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |m: &str| Err(Error::Plan(m.to_string()));
        if self.duration.is_zero() || self.duration > Duration::from_secs(3600) {
            return fail("duration must be between 1 ms and 1 h");
        }
        if self.max_requests == 0 || self.max_connections == 0 {
            return fail("max requests and max connections must be at least 1");
        }
        if self.legit_sources.is_empty() || self.legit_requests.is_empty() {
            return fail("legit traffic needs at least one source and one request");
        }
        match self.legit_mode {
            LoadMode::Open { rate } if !(rate > 0.0 && rate <= 1e6) => {
                return fail("legit rate must be in (0, 1e6]")
            }
            LoadMode::Closed { concurrency } if concurrency == 0 || concurrency > 10_000 => {
                return fail("legit concurrency must be 1..=10000")
            }
            _ => {}
        }
        if self.scenario == Scenario::Reload {
            match &self.change {
                None => return fail("the reload scenario needs a change plan"),
                Some(c) if c.variants.is_empty() || c.reloads == 0 || c.reloads > 10_000 => {
                    return fail("the reload scenario needs config variants and 1..=10000 reloads")
                }
                Some(_) => {}
            }
        }
        if !matches!(self.scenario, Scenario::Benign | Scenario::Reload) {
            if self.attack_sources.is_empty() {
                return fail("the attack needs at least one source address");
            }
            if self
                .attack_sources
                .iter()
                .any(|a| self.legit_sources.contains(a))
            {
                return fail("attack and legit source addresses must differ");
            }
        }
        if matches!(self.scenario, Scenario::Flood | Scenario::Attack) {
            if !(self.attack_rate > 0.0 && self.attack_rate <= 1e6) {
                return fail("attack rate must be in (0, 1e6]");
            }
            if self.attack_requests.is_empty() {
                return fail("the attack needs at least one request");
            }
        }
        if self.scenario == Scenario::Slowloris
            && (self.slowloris_connections == 0 || self.slowloris_connections > 100_000)
        {
            return fail("slowloris connections must be 1..=100000");
        }
        Ok(())
    }
}

/// Live counters, readable while the run goes (progress bar).
#[derive(Default)]
pub struct Live {
    pub legit: Arc<Recorder>,
    pub attack: Arc<Recorder>,
    pub slowloris: Arc<SlowStats>,
    /// Legit requests sent after the SIGTERM of the `reload` scenario (the drain).
    pub drain: Arc<Recorder>,
}

/// Runs the plan to its end (deadline or request limits) and reports.
pub async fn run(plan: Plan, live: &Live) -> Result<Report, Error> {
    plan.validate()?;
    let target = Arc::new(plan.target.clone());
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut set = JoinSet::new();
    let terminated = crate::reload::Terminated::default();
    let changes = plan.change.clone().map(|change| {
        tokio::spawn(crate::reload::drive(
            change,
            start,
            deadline,
            terminated.clone(),
        ))
    });

    let legit = Traffic {
        target: target.clone(),
        sources: plan.legit_sources.clone(),
        requests: encode(&plan.legit_requests, &target),
        rec: live.legit.clone(),
        start,
        deadline,
        max: plan.max_requests,
        timeout: plan.request_timeout,
        max_conns: plan.max_connections,
        after_term: changes
            .is_some()
            .then(|| (terminated.clone(), live.drain.clone())),
    };
    match plan.legit_mode {
        LoadMode::Open { rate } => set.spawn(legit.open_loop(rate)),
        LoadMode::Closed { concurrency } => set.spawn(legit.closed_loop(concurrency)),
    };
    match plan.scenario {
        Scenario::Benign | Scenario::Reload => {}
        Scenario::Flood | Scenario::Attack => {
            let attack = Traffic {
                target: target.clone(),
                sources: plan.attack_sources.clone(),
                requests: encode(&plan.attack_requests, &target),
                rec: live.attack.clone(),
                start,
                deadline,
                max: plan.max_requests,
                timeout: plan.request_timeout,
                max_conns: plan.max_connections,
                after_term: None,
            };
            set.spawn(attack.open_loop(plan.attack_rate * plan.attack_sources.len() as f64));
        }
        Scenario::Slowloris => {
            set.spawn(slowloris::run(
                target.clone(),
                plan.attack_sources.clone(),
                plan.slowloris_connections,
                plan.slowloris_interval,
                deadline,
                live.slowloris.clone(),
            ));
        }
    }
    while set.join_next().await.is_some() {}
    let changes = match changes {
        Some(task) => Some(task.await.unwrap_or_else(|e| crate::reload::ChangeReport {
            problems: vec![format!("change driver: {e}")],
            ..Default::default()
        })),
        None => None,
    };
    let elapsed = start.elapsed();
    Ok(Report {
        scenario: plan.scenario.name().into(),
        target: format!(
            "{}://{}",
            if target.is_tls() { "https" } else { "http" },
            target.addr
        ),
        legit_mode: plan.legit_mode.to_string(),
        duration_secs: elapsed.as_secs_f64(),
        legit: live.legit.report(elapsed),
        attack: matches!(plan.scenario, Scenario::Flood | Scenario::Attack)
            .then(|| live.attack.report(elapsed)),
        slowloris: (plan.scenario == Scenario::Slowloris)
            .then(|| live.slowloris.report(plan.slowloris_connections)),
        drain: changes
            .as_ref()
            .filter(|c| c.sigterm_at_secs.is_some())
            .map(|_| live.drain.report(elapsed)),
        changes,
    })
}

/// The requests of a class, prepared once for the target.
type Wire = Arc<Vec<Prepared>>;

fn encode(requests: &[Request], target: &Target) -> Wire {
    Arc::new(requests.iter().map(|r| r.prepare(&target.host)).collect())
}

/// Idle keep-alive connections of one source address, and a cap on them.
struct Pool {
    source: IpAddr,
    idle: Mutex<Vec<Client>>,
    slots: Semaphore,
}

impl Pool {
    fn take(&self) -> Option<Client> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put(&self, client: Client) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(client);
    }
}

/// One class of request traffic.
struct Traffic {
    target: Arc<Target>,
    sources: Vec<IpAddr>,
    requests: Wire,
    rec: Arc<Recorder>,
    /// The run's start: both classes schedule from the same instant.
    start: Instant,
    deadline: Instant,
    max: u64,
    timeout: Duration,
    max_conns: usize,
    /// Requests sent once this is set go to this recorder instead (the drain), for
    /// [`crate::reload::DRAIN_WINDOW`].
    after_term: Option<(crate::reload::Terminated, Arc<Recorder>)>,
}

impl Traffic {
    /// The recorder for a request sent now; `None` once the drain window is over.
    fn recorder(&self) -> Option<Arc<Recorder>> {
        drain_recorder(&self.rec, &self.after_term).cloned()
    }

    async fn open_loop(self, rate: f64) {
        let pools: Vec<Arc<Pool>> = self
            .sources
            .iter()
            .map(|&source| {
                Arc::new(Pool {
                    source,
                    idle: Mutex::new(Vec::new()),
                    slots: Semaphore::new(self.max_conns),
                })
            })
            .collect();
        let mut tasks = JoinSet::new();
        for i in 0..self.max {
            let intended = self.start + Duration::from_secs_f64(i as f64 / rate);
            if intended >= self.deadline {
                break;
            }
            tokio::time::sleep_until(intended.into()).await;
            while tasks.try_join_next().is_some() {}
            let idx = i as usize;
            let pool = pools[idx % pools.len()].clone();
            let requests = self.requests.clone();
            let Some(rec) = self.recorder() else { break };
            let (target, timeout) = (self.target.clone(), self.timeout);
            rec.scheduled();
            tasks.spawn(async move {
                let request = &requests[idx % requests.len()];
                let outcome = match pool.slots.acquire().await {
                    Ok(_permit) => pooled_exchange(&target, &pool, request, timeout).await,
                    Err(_) => Outcome::Error(ErrorKind::Io),
                };
                rec.record(outcome, intended.elapsed());
            });
        }
        // Every task is bounded by its timeout (plus waiting for a slot,
        // itself bounded by other tasks' timeouts); cap the drain anyway.
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.timeout * 4 + Duration::from_secs(1), drain)
            .await
            .is_err()
        {
            tasks.abort_all();
        }
    }

    async fn closed_loop(self, concurrency: usize) {
        let next = Arc::new(AtomicU64::new(0));
        let mut workers = JoinSet::new();
        for w in 0..concurrency {
            let source = self.sources[w % self.sources.len()];
            let (target, requests, next) =
                (self.target.clone(), self.requests.clone(), next.clone());
            let (rec, after_term) = (self.rec.clone(), self.after_term.clone());
            let (deadline, max, timeout) = (self.deadline, self.max, self.timeout);
            workers.spawn(async move {
                let mut client: Option<Client> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= max || Instant::now() >= deadline {
                        return;
                    }
                    let request = &requests[i as usize % requests.len()];
                    let Some(rec) = drain_recorder(&rec, &after_term) else {
                        return;
                    };
                    rec.scheduled();
                    let sent_at = Instant::now();
                    let outcome =
                        one_exchange(&target, source, &mut client, request, timeout).await;
                    rec.record(outcome, sent_at.elapsed());
                }
            });
        }
        while workers.join_next().await.is_some() {}
    }
}

/// `rec`, or the drain's recorder after the SIGTERM, or `None` once the drain window is over.
fn drain_recorder<'a>(
    rec: &'a Arc<Recorder>,
    after_term: &'a Option<(crate::reload::Terminated, Arc<Recorder>)>,
) -> Option<&'a Arc<Recorder>> {
    match after_term {
        Some((term, drain)) => match term.get() {
            Some(at) if at.elapsed() > crate::reload::DRAIN_WINDOW => None,
            Some(_) => Some(drain),
            None => Some(rec),
        },
        None => Some(rec),
    }
}

/// One request on a pooled connection (reused if one is idle).
async fn pooled_exchange(
    target: &Target,
    pool: &Pool,
    request: &Prepared,
    timeout: Duration,
) -> Outcome {
    let mut client = pool.take();
    let outcome = one_exchange(target, pool.source, &mut client, request, timeout).await;
    if let Some(c) = client {
        pool.put(c);
    }
    outcome
}

/// Sends on `client` (or a new connection), retrying once on a fresh
/// connection if a reused one turns out closed. Leaves `client` set only if
/// the connection can be reused.
async fn one_exchange(
    target: &Target,
    source: IpAddr,
    client: &mut Option<Client>,
    request: &Prepared,
    timeout: Duration,
) -> Outcome {
    let attempt = async {
        if let Some(c) = client.as_mut() {
            if !c.is_idle_for(request).await {
                // Closed, answered while idle, or of the other kind: do not reuse.
                *client = None;
            }
        }
        let reused = client.is_some();
        for fresh in [false, true] {
            if fresh && !reused {
                break;
            }
            let mut c = match client.take() {
                Some(c) if !fresh => c,
                _ => match target.connect(Some(source)).await {
                    Ok(conn) => match Client::connect(conn, request).await {
                        Ok(c) => c,
                        Err(e) => return Outcome::Error(ErrorKind::of(&e)),
                    },
                    Err(e) => return Outcome::Error(ErrorKind::of(&e)),
                },
            };
            match c.exchange(request).await {
                Ok(resp) => {
                    if !resp.close {
                        *client = Some(c);
                    }
                    return Outcome::Status(resp.status);
                }
                Err(e) if reused && !fresh && ErrorKind::of(&e) == ErrorKind::Closed => continue,
                Err(e) => return Outcome::Error(ErrorKind::of(&e)),
            }
        }
        Outcome::Error(ErrorKind::Closed)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => {
            *client = None;
            Outcome::Error(ErrorKind::Timeout)
        }
    }
}
