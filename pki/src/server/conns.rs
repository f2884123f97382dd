//! Connection admission: a global cap and a per-address cap, so one client
//! (or one address full of idle sockets) cannot take every slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections, in total and per peer address.
pub(super) struct ConnTable {
    inner: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_ip: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A held connection slot; released when dropped.
pub(super) struct Slot {
    inner: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl ConnTable {
    pub(super) fn new(max_total: usize, max_per_ip: usize) -> Self {
        ConnTable {
            inner: Arc::new(Mutex::new(Counts::default())),
            max_total,
            max_per_ip,
        }
    }

    /// A slot for a new connection from `ip`, or the cap it would exceed
    /// (`per_ip_cap`, `global_cap`: the metric's reason label).
    pub(super) fn admit(&self, ip: IpAddr) -> Result<Slot, &'static str> {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.max_total {
            return Err("global_cap");
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err("per_ip_cap");
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            inner: Arc::clone(&self.inner),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total() {
        let t = ConnTable::new(5, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = t.admit(a).unwrap();
        let _s2 = t.admit(a).unwrap();
        assert_eq!(t.admit(a).err(), Some("per_ip_cap"));
        let _b: Vec<_> = (0..2).map(|_| t.admit(b).unwrap()).collect();
        drop(s1);
        let _s3 = t.admit(a).unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let _c1 = t.admit(c).unwrap();
        assert_eq!(t.admit(c).err(), Some("global_cap"));
    }
}
