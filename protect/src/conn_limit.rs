//! Connection caps checked before the TLS handshake (S.N.4): a global
//! maximum of open connections, a per-IP maximum of concurrent connections
//! and a per-IP rate of new connections. A connection holds a [`ConnGuard`]
//! while open; dropping it gives the slots back.
//!
//! Pingora 0.9 calls `ConnectionFilter::should_accept(Option<&SocketAddr>)`
//! in `ListenerEndpoint::accept()`, right after `accept(2)` and before the
//! TLS handshake, but has no hook when a connection closes. [`filter`] and
//! `pingora` (feature `pingora`) bridge that: the filter parks the guard under the peer's `SocketAddr`
//! (unique per open TCP connection to a listener), and a `ServerApp` wrapper
//! around the proxy app moves it into the stream ([`stream::TrackedStream`])
//! when the connection reaches the app, so dropping the connection releases
//! it. Guards of connections that never reach the app (Pingora-side TLS
//! handshake failed or timed out) are released by
//! [`ConnCapFilter::sweep`] after `handshake_grace_secs`.
//!
//! At the per-IP cap a new connection does not simply lose to the ones the
//! IP already holds: the oldest of them that is *stalled* (see [`slot`]:
//! waiting on its client for a request head, or for a body below the
//! minimum rate) is evicted, its slots given back at once and its stream
//! told to fail, and the new one takes its place (`conn_evicted_stalled`).
//! Only when every connection of the IP is established is the new one
//! refused (`conn_cap_per_ip`). So a slowloris from an address shared with
//! real clients (NAT, a proxy) cannot lock them out, and still never holds
//! more than the cap.

pub mod filter;
#[cfg(feature = "pingora")]
pub mod pingora;
pub mod slot;
pub mod stream;

use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

pub use filter::ConnCapFilter;
pub use slot::ConnSlot;

use super::client_key::{ClientKey, KeyPrefixes};
use super::denial::DenialReason;
use super::ratelimit::{Decision, KeyedLimit, Rate};
use rampart_ops::config::Bounds;

/// `max_connections`, `max_per_ip`: 0 (no cap) to ten million.
pub const CONNECTIONS: Bounds = Bounds::new(0, 10_000_000, "");
/// `handshake_grace_secs`: 1 s to one hour.
pub const GRACE_SECS: Bounds = Bounds::new(1, 3_600, "s");

/// `[connections]` in the proxy config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConnLimitConfig {
    /// Open connections for the whole process; 0 = no cap.
    pub max_connections: usize,
    /// Concurrent connections from one client key; 0 = no cap.
    pub max_per_ip: u32,
    /// New connections per client key (GCRA, with burst).
    pub new_per_ip: Rate,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// How long an accepted connection may take to reach the HTTP layer
    /// (TLS handshake) before its slot is reclaimed. Pingora's handshake
    /// timeout is 60 s, hence 65.
    pub handshake_grace_secs: u64,
}

impl Default for ConnLimitConfig {
    fn default() -> Self {
        let p = KeyPrefixes::default();
        Self {
            max_connections: 20_000,
            // A NATed office or a TLS scanner is one address: see the proxy's docs,
            // "Connection limits".
            max_per_ip: 1024,
            new_per_ip: Rate::per_second(50, 1000),
            ipv4_prefix: p.ipv4_prefix,
            ipv6_prefix: p.ipv6_prefix,
            handshake_grace_secs: 65,
        }
    }
}

impl ConnLimitConfig {
    pub fn prefixes(&self) -> KeyPrefixes {
        KeyPrefixes {
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.new_per_ip.validate("connections.new_per_ip")?;
        self.prefixes().validate("connections")?;
        Bounds::check_all(
            "connections",
            &[
                ("max_connections", self.max_connections as u64, CONNECTIONS),
                ("max_per_ip", self.max_per_ip.into(), CONNECTIONS),
                (
                    "handshake_grace_secs",
                    self.handshake_grace_secs,
                    GRACE_SECS,
                ),
            ],
        )
    }
}

/// One client key's open connections, oldest first. `slots` is kept only
/// when there is a per-IP cap (it is what eviction picks from), so its
/// length stays bounded by the cap.
#[derive(Default)]
struct KeyConns {
    count: u32,
    slots: Vec<Arc<ConnSlot>>,
}

struct Counts {
    global: AtomicUsize,
    per_key: Mutex<HashMap<ClientKey, KeyConns>>,
}

impl Counts {
    fn per_key(&self) -> MutexGuard<'_, HashMap<ClientKey, KeyConns>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (single insert/remove), so a poisoned lock is still usable.
        self.per_key.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The caps of one config generation (`[connections]` without the key
/// prefixes and handshake grace, which are bound at start): what
/// [`ConnLimiter::admit`] checks a new connection against.
#[derive(derive_more::Debug)]
pub struct ConnLimits {
    /// Open connections for the whole process; 0 = no cap.
    pub max_connections: usize,
    /// Concurrent connections from one client key; 0 = no cap.
    pub max_per_ip: u32,
    /// New connections per client key; its per-key buckets carry over a
    /// reload that leaves the rate unchanged.
    #[debug("{:?}", new_rate.rate())]
    new_rate: Arc<KeyedLimit>,
}

impl ConnLimits {
    pub fn new(config: &ConnLimitConfig) -> Result<Self, String> {
        Self::carry(config, None)
    }

    /// The caps of `config`; the new-connection buckets of `previous` are
    /// kept when its rate is the same.
    pub fn carry(config: &ConnLimitConfig, previous: Option<&ConnLimits>) -> Result<Self, String> {
        config.validate()?;
        let new_rate = match previous {
            Some(p) if p.new_rate.rate() == config.new_per_ip => p.new_rate.clone(),
            _ => Arc::new(KeyedLimit::new(
                config.new_per_ip,
                "connections.new_per_ip",
            )?),
        };
        Ok(Self {
            max_connections: config.max_connections,
            max_per_ip: config.max_per_ip,
            new_rate,
        })
    }
}

/// Where a limiter reads the caps in force: a fixed set, or the running
/// generation of the process that embeds it.
pub type LimitsSource = Arc<dyn Fn() -> Arc<ConnLimits> + Send + Sync>;

/// Admission control for new connections; one per listener set. The counts
/// of open connections live here and outlast reloads; the caps are read from
/// [`LimitsSource`] once per new connection.
#[derive(derive_more::Debug)]
pub struct ConnLimiter {
    #[debug(skip)]
    limits: LimitsSource,
    prefixes: KeyPrefixes,
    #[debug("{}", counts.global.load(Ordering::Relaxed))]
    counts: Arc<Counts>,
}

/// One open connection's slots; released on drop (or on eviction).
#[derive(derive_more::Debug)]
pub struct ConnGuard {
    #[debug("{}", counts.global.load(Ordering::Relaxed))]
    counts: Arc<Counts>,
    key: ClientKey,
    slot: Arc<ConnSlot>,
}

/// An admitted connection, and the stalled one it displaced, if any (already
/// released and signalled; the caller reports it).
#[derive(Debug)]
pub struct Admission {
    pub guard: ConnGuard,
    pub evicted: Option<Evicted>,
}

/// A connection evicted to make room under the per-IP cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub peer: Option<SocketAddr>,
    /// What it was stalled on, for the event line.
    pub stalled_on: &'static str,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if self.slot.released.swap(true, Ordering::AcqRel) {
            return; // evicted: its slots went to the connection that replaced it
        }
        self.counts.global.fetch_sub(1, Ordering::AcqRel);
        let mut map = self.counts.per_key();
        if let Some(conns) = map.get_mut(&self.key) {
            conns.count -= 1;
            if let Some(i) = conns.slots.iter().position(|s| Arc::ptr_eq(s, &self.slot)) {
                conns.slots.remove(i);
            }
            if conns.count == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl ConnGuard {
    pub fn key(&self) -> ClientKey {
        self.key
    }

    /// This connection's state and eviction signal.
    pub fn slot(&self) -> &Arc<ConnSlot> {
        &self.slot
    }
}

impl ConnLimitConfig {
    /// A reload may change the caps and the rate; the key prefixes and the
    /// handshake grace are bound at start (open connections are counted
    /// under them): an error names the changed one.
    pub fn check_bound_fields(&self, old: &ConnLimitConfig) -> Result<(), String> {
        for (field, changed) in [
            ("ipv4_prefix", old.ipv4_prefix != self.ipv4_prefix),
            ("ipv6_prefix", old.ipv6_prefix != self.ipv6_prefix),
            (
                "handshake_grace_secs",
                old.handshake_grace_secs != self.handshake_grace_secs,
            ),
        ] {
            if changed {
                return Err(format!(
                    "protect.connections.{field} is bound at start (open connections are \
                     counted under it): restart to change it"
                ));
            }
        }
        Ok(())
    }
}

impl ConnLimiter {
    /// A limiter with the fixed caps of `config`.
    pub fn new(config: &ConnLimitConfig) -> Result<Self, String> {
        let limits = Arc::new(ConnLimits::new(config)?);
        Ok(Self::following(
            config.prefixes(),
            Arc::new(move || limits.clone()),
        ))
    }

    /// A limiter that reads its caps from `limits` (the embedding process's
    /// current generation) for every new connection.
    pub fn following(prefixes: KeyPrefixes, limits: LimitsSource) -> Self {
        Self {
            limits,
            prefixes,
            counts: Arc::new(Counts {
                global: AtomicUsize::new(0),
                per_key: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The caps in force now.
    pub fn limits(&self) -> Arc<ConnLimits> {
        (self.limits)()
    }

    /// Admits a new connection from `ip` (see [`Self::admit`]).
    pub fn try_admit(&self, ip: IpAddr) -> Result<ConnGuard, DenialReason> {
        self.admit(ip, None).map(|a| a.guard)
    }

    /// Admits a new connection from `ip` (`peer`: its address, for the
    /// event line if it is evicted later), or names the cap it hit. Checks
    /// the cheap global cap first, then the per-IP cap, then the per-IP
    /// new-connection rate (so a refused connection spends no rate token).
    /// At the per-IP cap, the IP's oldest stalled connection is evicted to
    /// make room, if it has one and the new connection is within its rate.
    pub fn admit(&self, ip: IpAddr, peer: Option<SocketAddr>) -> Result<Admission, DenialReason> {
        let key = self.prefixes.key(ip);
        let limits = self.limits();
        let global = self.counts.global.fetch_add(1, Ordering::AcqRel) + 1;
        let (max_connections, max_per_ip) = (limits.max_connections, limits.max_per_ip);
        if max_connections != 0 && global > max_connections {
            self.counts.global.fetch_sub(1, Ordering::AcqRel);
            return Err(DenialReason::ConnCapGlobal);
        }
        let slot = Arc::new(ConnSlot::new(peer));
        let evicted = {
            let mut map = self.counts.per_key();
            let conns = map.entry(key).or_default();
            let evicted = if max_per_ip != 0 && conns.count >= max_per_ip {
                match Self::evict_for(&limits, conns, &key) {
                    Ok(evicted) => Some(evicted),
                    Err(reason) => {
                        drop(map);
                        self.counts.global.fetch_sub(1, Ordering::AcqRel);
                        return Err(reason);
                    }
                }
            } else {
                None
            };
            conns.count += 1;
            if max_per_ip != 0 {
                conns.slots.push(slot.clone());
            }
            evicted
        };
        // From here the guard owns both slots and gives them back on drop.
        let guard = ConnGuard {
            counts: self.counts.clone(),
            key,
            slot,
        };
        let evicted = match evicted {
            Some((old, stalled_on)) => {
                // Its per-IP slot went to the new connection; the global one is
                // given back here, so neither count ever exceeds its cap.
                self.counts.global.fetch_sub(1, Ordering::AcqRel);
                old.evict();
                Some(Evicted {
                    peer: old.peer(),
                    stalled_on,
                })
            }
            None => {
                if let Decision::Deny { .. } = limits.new_rate.check(&key) {
                    return Err(DenialReason::ConnRate);
                }
                None
            }
        };
        Ok(Admission { guard, evicted })
    }

    /// At the cap: takes the oldest stalled connection out of `conns`
    /// (marked released: its guard will not give its slots back again) if
    /// the new connection is within its rate; else names the refusal.
    fn evict_for(
        limits: &ConnLimits,
        conns: &mut KeyConns,
        key: &ClientKey,
    ) -> Result<(Arc<ConnSlot>, &'static str), DenialReason> {
        let now = Instant::now();
        let Some((i, stalled_on)) = conns
            .slots
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.stalled_on(now).map(|why| (i, why)))
        else {
            return Err(DenialReason::ConnCapPerIp);
        };
        // Checked before evicting: a connection refused for its rate must
        // not cost another one its place.
        if let Decision::Deny { .. } = limits.new_rate.check(key) {
            return Err(DenialReason::ConnRate);
        }
        let old = conns.slots.remove(i);
        old.released.store(true, Ordering::Release);
        conns.count -= 1;
        Ok((old, stalled_on))
    }

    pub fn max_per_ip(&self) -> u32 {
        self.limits().max_per_ip
    }

    /// Open connections now.
    pub fn active(&self) -> usize {
        self.counts.global.load(Ordering::Acquire)
    }

    /// Open connections from the key of `ip` now.
    pub fn active_for(&self, ip: IpAddr) -> u32 {
        let key = self.prefixes.key(ip);
        self.counts.per_key().get(&key).map_or(0, |c| c.count)
    }

    /// Client keys with at least one open connection (bounded by `active`).
    pub fn tracked_keys(&self) -> usize {
        self.counts.per_key().len()
    }

    /// Drops idle keys of the new-connection rate limiter.
    pub fn sweep_rate_keys(&self, max_keys: usize) {
        self.limits().new_rate.sweep(max_keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(toml_text: &str) -> ConnLimiter {
        ConnLimiter::new(&toml::from_str(toml_text).unwrap()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Admits and marks the connection established (served), so it is
    /// not evictable.
    fn established(l: &ConnLimiter, ip: IpAddr) -> ConnGuard {
        let g = l.try_admit(ip).unwrap();
        g.slot().established();
        g
    }

    #[test]
    fn per_ip_cap_and_release_on_drop() {
        let l = limiter("max_per_ip = 2\nnew_per_ip = { requests = 100, burst = 100 }");
        let a = established(&l, ip("10.0.0.1"));
        let _b = established(&l, ip("10.0.0.1"));
        assert_eq!(
            l.try_admit(ip("10.0.0.1")).unwrap_err(),
            DenialReason::ConnCapPerIp
        );
        assert!(l.try_admit(ip("10.0.0.2")).is_ok(), "other IPs unaffected");
        assert_eq!(l.active_for(ip("10.0.0.1")), 2);
        drop(a);
        assert_eq!(l.active_for(ip("10.0.0.1")), 1);
        assert!(l.try_admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn global_cap() {
        let l = limiter("max_connections = 3\nnew_per_ip = { requests = 100, burst = 100 }");
        let guards: Vec<_> = (1..=3u8)
            .map(|i| l.try_admit(IpAddr::from([10, 0, 0, i])).unwrap())
            .collect();
        assert_eq!(
            l.try_admit(ip("10.9.9.9")).unwrap_err(),
            DenialReason::ConnCapGlobal
        );
        assert_eq!(l.active(), 3, "a refused connection holds no slot");
        drop(guards);
        assert_eq!(l.active(), 0);
        assert_eq!(l.tracked_keys(), 0, "per-IP entries removed at zero");
    }

    #[test]
    fn new_connection_rate_per_ip() {
        let l = limiter("new_per_ip = { requests = 1, per_seconds = 60, burst = 2 }");
        drop(l.try_admit(ip("10.0.0.1")).unwrap());
        drop(l.try_admit(ip("10.0.0.1")).unwrap());
        assert_eq!(
            l.try_admit(ip("10.0.0.1")).unwrap_err(),
            DenialReason::ConnRate
        );
        assert_eq!(l.active(), 0, "rate-refused connection released its slots");
        assert!(l.try_admit(ip("10.0.0.2")).is_ok());
    }

    #[test]
    fn ipv6_per_64() {
        let l = limiter("max_per_ip = 1\nnew_per_ip = { requests = 100, burst = 100 }");
        let _a = established(&l, ip("2001:db8::1"));
        assert_eq!(
            l.try_admit(ip("2001:db8::2")).unwrap_err(),
            DenialReason::ConnCapPerIp
        );
    }

    #[test]
    fn at_the_cap_the_oldest_stalled_connection_is_evicted() {
        let l = limiter("max_per_ip = 3\nnew_per_ip = { requests = 100, burst = 100 }");
        let served = established(&l, ip("10.0.0.1"));
        let stalled_old = l.try_admit(ip("10.0.0.1")).unwrap();
        let stalled_new = l.try_admit(ip("10.0.0.1")).unwrap();
        let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let a = l.admit(peer.ip(), Some(peer)).unwrap();
        let evicted = a.evicted.unwrap();
        assert!(evicted.stalled_on.contains("request head"));
        assert!(stalled_old.slot().is_evicted(), "the oldest stalled one");
        assert!(!stalled_new.slot().is_evicted() && !served.slot().is_evicted());
        assert_eq!(l.active_for(ip("10.0.0.1")), 3, "never above the cap");
        assert_eq!(l.active(), 3);
        drop(stalled_old);
        assert_eq!(l.active(), 3, "an evicted guard does not release twice");
        assert_eq!(l.active_for(ip("10.0.0.1")), 3);
        // The evicted connection's replacement is stalled too: it goes next,
        // then only established ones are left and the cap refuses.
        stalled_new.slot().established();
        let b = l.admit(peer.ip(), Some(peer)).unwrap();
        assert_eq!(b.evicted.unwrap().peer, Some(peer));
        a.guard.slot().established();
        b.guard.slot().established();
        assert_eq!(
            l.try_admit(ip("10.0.0.1")).unwrap_err(),
            DenialReason::ConnCapPerIp
        );
        drop((served, stalled_new, a, b));
        assert_eq!((l.active(), l.tracked_keys()), (0, 0));
    }

    #[test]
    fn eviction_does_not_spend_a_place_on_a_rate_refused_connection() {
        let l =
            limiter("max_per_ip = 1\nnew_per_ip = { requests = 1, per_seconds = 60, burst = 1 }");
        let stalled = l.try_admit(ip("10.0.0.1")).unwrap();
        assert_eq!(
            l.try_admit(ip("10.0.0.1")).unwrap_err(),
            DenialReason::ConnRate
        );
        assert!(!stalled.slot().is_evicted());
        assert_eq!(l.active(), 1);
    }

    #[test]
    fn config_validation() {
        assert!(toml::from_str::<ConnLimitConfig>("max_per_client = 3").is_err());
        let c: ConnLimitConfig = toml::from_str("new_per_ip = { requests = 0 }").unwrap();
        assert!(c.validate().unwrap_err().contains("connections.new_per_ip"));
    }
}
