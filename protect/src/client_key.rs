//! The key a client is limited by: its address, with IPv6 grouped by prefix
//! (a /64 is one subscriber; keying by /128 lets one host rotate addresses
//! freely and bypass every per-client limit).

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How client addresses are grouped into keys.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct KeyPrefixes {
    /// IPv4 prefix length (1..=32); 32 = one key per address.
    pub ipv4_prefix: u8,
    /// IPv6 prefix length (1..=128); 64 by default.
    pub ipv6_prefix: u8,
}

impl Default for KeyPrefixes {
    fn default() -> Self {
        Self {
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

/// A masked client address: the unit every per-client limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn addr(&self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl KeyPrefixes {
    /// Checks the prefix lengths; `what` names the config table in the error.
    pub fn validate(&self, what: &str) -> Result<(), String> {
        if !(1..=32).contains(&self.ipv4_prefix) {
            return Err(format!("{what}.ipv4_prefix must be 1..=32"));
        }
        if !(1..=128).contains(&self.ipv6_prefix) {
            return Err(format!("{what}.ipv6_prefix must be 1..=128"));
        }
        Ok(())
    }

    /// The key for a client address. IPv4-mapped IPv6 (`::ffff:a.b.c.d`,
    /// seen on dual-stack listeners) counts as the IPv4 address.
    pub fn key(&self, ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4) & mask32(self.ipv4_prefix);
                ClientKey(IpAddr::V4(Ipv4Addr::from(bits)))
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & mask128(self.ipv6_prefix);
                ClientKey(IpAddr::V6(Ipv6Addr::from(bits)))
            }
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    match prefix.min(32) {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

fn mask128(prefix: u8) -> u128 {
    match prefix.min(128) {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_keyed_by_64_by_default() {
        let k = KeyPrefixes::default();
        let a = k.key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = k.key("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = k.key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::");
    }

    #[test]
    fn ipv4_per_address_and_mapped_v6_is_v4() {
        let k = KeyPrefixes::default();
        assert_ne!(
            k.key("10.0.0.1".parse().unwrap()),
            k.key("10.0.0.2".parse().unwrap())
        );
        assert_eq!(
            k.key("::ffff:10.0.0.1".parse().unwrap()),
            k.key("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn configurable_prefixes() {
        let k = KeyPrefixes {
            ipv4_prefix: 24,
            ipv6_prefix: 128,
        };
        assert_eq!(
            k.key("10.0.0.1".parse().unwrap()),
            k.key("10.0.0.200".parse().unwrap())
        );
        assert_ne!(
            k.key("2001:db8::1".parse().unwrap()),
            k.key("2001:db8::2".parse().unwrap())
        );
        assert!(k.validate("x").is_ok());
        assert!(KeyPrefixes {
            ipv4_prefix: 0,
            ipv6_prefix: 64
        }
        .validate("x")
        .is_err());
        assert!(KeyPrefixes {
            ipv4_prefix: 32,
            ipv6_prefix: 129
        }
        .validate("x")
        .is_err());
    }
}
