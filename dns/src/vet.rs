//! Address vetting: which answers the egress path may dial.
//!
//! A name that an egress rule allows may still resolve to an address inside the cluster, the
//! node or the cloud provider's metadata service (DNS rebinding, a hijacked record, a careless
//! CNAME). Every address a lookup returns is classified here; anything but a public unicast
//! address is refused unless the rule that allowed the name also names that network.
//!
//! IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64 and 6to4) are
//! classified by the IPv4 address they carry, so `::ffff:127.0.0.1` or `64:ff9b::a9fe:a9fe` do
//! not slip past as "public IPv6".

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is not a plain public unicast destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    /// A cloud provider's instance metadata or host service (169.254.169.254, fd00:ec2::254,
    /// fd20:ce::254, 100.100.100.200, 168.63.129.16, 169.254.170.2).
    CloudMetadata,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16) and IPv6 unique-local fc00::/7.
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// 100.64.0.0/10 (carrier-grade NAT, RFC 6598).
    SharedCgnat,
    /// 224.0.0.0/4, 255.255.255.255, ff00::/8.
    Multicast,
    /// 0.0.0.0/8 ("this network"), ::.
    Unspecified,
    /// Documentation, benchmarking, protocol-assignment and future-use blocks (192.0.0.0/24,
    /// 192.0.2.0/24, 198.18.0.0/15, 198.51.100.0/24, 203.0.113.0/24, 240.0.0.0/4,
    /// 2001:db8::/32, 100::/64, 2001::/23 protocol assignments other than Teredo, ...).
    Reserved,
}

impl AddressClass {
    /// Stable snake_case name, used in logs and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::CloudMetadata => "cloud_metadata",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link_local",
            AddressClass::SharedCgnat => "shared_cgnat",
            AddressClass::Multicast => "multicast",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Reserved => "reserved",
        }
    }

    /// A short human explanation.
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::CloudMetadata => "a cloud instance-metadata address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private (RFC 1918 / unique-local) address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::SharedCgnat => "a carrier-grade NAT (100.64.0.0/10) address",
            AddressClass::Multicast => "a multicast or broadcast address",
            AddressClass::Unspecified => "an unspecified (0.0.0.0/8 or ::) address",
            AddressClass::Reserved => "a reserved, documentation or benchmarking address",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cloud metadata and host-service addresses, checked before the broader ranges so the report
/// says "metadata" rather than "link-local".
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, DigitalOcean, ...
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task metadata / credentials
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(168, 63, 129, 16),   // Azure wire server (a public address, but host-only)
];
const METADATA_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254), // AWS IMDS over IPv6
    Ipv6Addr::new(0xfd20, 0x00ce, 0, 0, 0, 0, 0, 0x0254), // GCP metadata over IPv6
];

/// Classifies an address; `None` means public unicast (dialable without an explicit rule).
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    if METADATA_V4.contains(&ip) {
        return Some(AddressClass::CloudMetadata);
    }
    let [a, b, c, _] = ip.octets();
    let class = match (a, b, c) {
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (10, _, _) => AddressClass::Private,
        (172, 16..=31, _) => AddressClass::Private,
        (192, 168, _) => AddressClass::Private,
        (169, 254, _) => AddressClass::LinkLocal,
        (100, 64..=127, _) => AddressClass::SharedCgnat,
        (224..=239, _, _) => AddressClass::Multicast,
        (255, 255, 255) if ip.is_broadcast() => AddressClass::Multicast,
        (240..=255, _, _) => AddressClass::Reserved,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Reserved,
        (198, 18..=19, _) => AddressClass::Reserved,
        (192, 88, 99) => AddressClass::Reserved, // deprecated 6to4 relay anycast
        _ => return None,
    };
    Some(class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    if METADATA_V6.contains(&ip) {
        return Some(AddressClass::CloudMetadata);
    }
    if ip.is_unspecified() {
        return Some(AddressClass::Unspecified);
    }
    if ip.is_loopback() {
        return Some(AddressClass::Loopback);
    }
    if let Some(v4) = embedded_v4(ip) {
        // A mapped/translated address reaches whatever its IPv4 address reaches.
        return classify_v4(v4);
    }
    let s = ip.segments();
    let class = match s[0] {
        0xff00..=0xffff => AddressClass::Multicast,
        0xfe80..=0xfebf => AddressClass::LinkLocal,
        0xfec0..=0xfeff => AddressClass::Reserved, // deprecated site-local
        0xfc00..=0xfdff => AddressClass::Private,
        0x2001 if s[1] == 0x0db8 => AddressClass::Reserved, // documentation
        0x2001 if s[1] < 0x0200 && s[1] != 0 => AddressClass::Reserved, // IETF protocol assignments
        0x3fff if s[1] < 0x1000 => AddressClass::Reserved,  // documentation (RFC 9637)
        0x0100 if s[1] == 0 && s[2] == 0 && s[3] == 0 => AddressClass::Reserved, // discard-only
        // Anything outside 2000::/3 is not global unicast today.
        x if !(0x2000..=0x3fff).contains(&x) => AddressClass::Reserved,
        _ => return None,
    };
    Some(class)
}

/// The IPv4 address carried by an IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96),
/// NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16) or Teredo (2001::/32, client address
/// obfuscated) address.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new(
        (s[6] >> 8) as u8,
        (s[6] & 0xff) as u8,
        (s[7] >> 8) as u8,
        (s[7] & 0xff) as u8,
    );
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, _, _] => Some(low), // IPv4-compatible (:: and ::1 handled above)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 1, ..] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            (hi & 0xff) as u8,
            (lo >> 8) as u8,
            (lo & 0xff) as u8,
        )),
        [0x2001, 0, ..] => Some(Ipv4Addr::new(
            !(s[6] >> 8) as u8,
            !(s[6] & 0xff) as u8,
            !(s[7] >> 8) as u8,
            !(s[7] & 0xff) as u8,
        )),
        _ => None,
    }
}

/// An address that vetting refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    pub addr: IpAddr,
    pub class: AddressClass,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}", self.addr, self.class.describe())
    }
}

/// Vets one address: public unicast passes; any other class passes only when one of
/// `named` (the networks the rule explicitly allows) contains it.
pub fn vet(addr: IpAddr, named: &[IpNet]) -> Result<(), Refusal> {
    match classify(addr) {
        None => Ok(()),
        Some(_) if named.iter().any(|net| net.contains(&addr)) => Ok(()),
        Some(class) => Err(Refusal { addr, class }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<AddressClass> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn classes() {
        use AddressClass::*;
        let cases = [
            ("169.254.169.254", Some(CloudMetadata)),
            ("169.254.170.2", Some(CloudMetadata)),
            ("100.100.100.200", Some(CloudMetadata)),
            ("168.63.129.16", Some(CloudMetadata)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("fd20:ce::254", Some(CloudMetadata)),
            ("169.254.1.1", Some(LinkLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("::1", Some(Loopback)),
            ("10.1.2.3", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.0.1", Some(Private)),
            ("fd12::1", Some(Private)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.128.0.1", None),
            ("224.0.0.1", Some(Multicast)),
            ("255.255.255.255", Some(Multicast)),
            ("ff02::1", Some(Multicast)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("::", Some(Unspecified)),
            ("192.0.2.1", Some(Reserved)),
            ("198.18.0.1", Some(Reserved)),
            ("240.0.0.1", Some(Reserved)),
            ("2001:db8::1", Some(Reserved)),
            ("93.184.216.34", None),
            ("8.8.8.8", None),
            ("2606:4700::1111", None),
            // IPv4 carried in IPv6 is judged by the IPv4 address.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("64:ff9b::a9fe:a9fe", Some(CloudMetadata)),
            ("64:ff9b::808:808", None),
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:0808:0808::1", None),
        ];
        for (addr, want) in cases {
            assert_eq!(c(addr), want, "{addr}");
        }
    }

    #[test]
    fn named_networks_lift_the_refusal_only_for_what_they_contain() {
        let named: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        assert!(vet("10.0.0.7".parse().unwrap(), &named).is_ok());
        let refused = vet("10.0.1.7".parse().unwrap(), &named).unwrap_err();
        assert_eq!(refused.class, AddressClass::Private);
        assert!(vet("8.8.8.8".parse().unwrap(), &[]).is_ok());
        let r = vet("169.254.169.254".parse().unwrap(), &[]).unwrap_err();
        assert_eq!(
            r.to_string(),
            "169.254.169.254 is a cloud instance-metadata address"
        );
    }
}
