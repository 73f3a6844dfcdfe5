//! Which IP addresses customer-directed HTTP may reach.
//!
//! A customer names the URL (a tool, a knowledge source, a BYOK endpoint),
//! so the address it resolves to is hostile input. Anything that is not a
//! plain public unicast address is refused: our own machine, our private
//! network, the cloud's metadata service, and the special-purpose ranges
//! of the IANA registries. IPv6 forms that carry an IPv4 address
//! (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are judged by the IPv4
//! address they carry, so `::ffff:127.0.0.1` is loopback.
//!
//! [`check_ip`] is pure and synchronous: the resolver, the redirect policy
//! and the URL check all call it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::OutboundError;

/// Why an address is refused: its class, named in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// `0.0.0.0`, `::`: "this host", which connects to ourselves.
    Unspecified,
    /// `0.0.0.0/8`: "this network".
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7`, site-local `fec0::/10`
    /// and the local-use NAT64 prefix `64:ff9b:1::/48`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud metadata service: `169.254.169.254` (AWS, GCP, Azure, …),
    /// `169.254.170.2` (ECS task credentials), `100.100.100.200` (Alibaba),
    /// `192.0.0.192` (Oracle), `fd00:ec2::254` (AWS over IPv6).
    Metadata,
    /// `100.64/10`: carrier-grade NAT, often a provider's internal network.
    SharedAddressSpace,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`.
    Documentation,
    /// `198.18/15`, `2001:2::/48`.
    Benchmarking,
    /// Everything else special-purpose: `192.0.0/24` (IETF protocol
    /// assignments), `240/4`, discard-only `100::/64`, Teredo `2001::/32`,
    /// and IPv6 outside global unicast `2000::/3`.
    Reserved,
}

impl AddressClass {
    /// The class as the error names it.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::ThisNetwork => "this-network",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Metadata => "cloud metadata",
            AddressClass::SharedAddressSpace => "shared (carrier-grade NAT)",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Known metadata services; checked before the wider class they sit in,
/// so the error says "cloud metadata" rather than "link-local".
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

/// The class that makes `ip` unreachable, or `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// `Ok` when `ip` may be reached: a public address, or any address when
/// `allow_private` is set. `host` (the name `ip` came from, or the literal
/// itself) is only for the error.
pub fn check_ip(host: &str, ip: IpAddr, allow_private: bool) -> Result<(), OutboundError> {
    Rules::new(allow_private).check(host, ip)
}

/// How the resolver, the redirect policy and the URL check judge an
/// address: [`classify`], unless `allow_private`. Tests of the client swap
/// the classifier to tell one loopback address from another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub allow_private: bool,
    pub classify: fn(IpAddr) -> Option<AddressClass>,
}

impl Rules {
    pub fn new(allow_private: bool) -> Rules {
        Rules {
            allow_private,
            classify,
        }
    }

    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), OutboundError> {
        if self.allow_private {
            return Ok(());
        }
        match (self.classify)(ip) {
            None => Ok(()),
            Some(why) => Err(OutboundError::Refused {
                host: host.to_owned(),
                ip,
                why,
            }),
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    if METADATA_V4.contains(&ip) {
        return Some(Metadata);
    }
    let class = if ip.is_unspecified() {
        Unspecified
    } else if in_v4(ip, [0, 0, 0, 0], 8) {
        ThisNetwork
    } else if ip.is_loopback() {
        Loopback
    } else if ip.is_private() {
        Private
    } else if ip.is_link_local() {
        LinkLocal
    } else if in_v4(ip, [100, 64, 0, 0], 10) {
        SharedAddressSpace
    } else if ip.is_broadcast() {
        Broadcast
    } else if ip.is_multicast() {
        Multicast
    } else if ip.is_documentation() {
        Documentation
    } else if in_v4(ip, [198, 18, 0, 0], 15) {
        Benchmarking
    } else if in_v4(ip, [192, 0, 0, 0], 24) || in_v4(ip, [240, 0, 0, 0], 4) {
        Reserved
    } else {
        return None;
    };
    Some(class)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// The IPv4 address in the low 32 bits.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass::*;
    if METADATA_V6.contains(&ip) {
        return Some(Metadata);
    }
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    // Forms that carry an IPv4 address are judged by it: IPv4-mapped
    // `::ffff:0:0/96`, IPv4-compatible `::/96` (deprecated, still routed by
    // some stacks), and the well-known NAT64 prefix `64:ff9b::/96`, which a
    // NAT64 gateway turns into a connection to the IPv4 address.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0; 8], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return classify_v4(low_v4(ip));
    }
    // 6to4 `2002::/16` carries the IPv4 address in bits 16..48.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        let v4 = Ipv4Addr::from(((u128::from(ip) >> 80) & 0xffff_ffff) as u32);
        return classify_v4(v4);
    }
    let class = if in_v6(ip, [0xff00, 0, 0, 0, 0, 0, 0, 0], 8) {
        Multicast
    } else if in_v6(ip, [0xfe80, 0, 0, 0, 0, 0, 0, 0], 10) {
        LinkLocal
    } else if in_v6(ip, [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7)
        || in_v6(ip, [0xfec0, 0, 0, 0, 0, 0, 0, 0], 10)
        || in_v6(ip, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48)
    {
        Private
    } else if in_v6(ip, [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32) {
        Documentation
    } else if in_v6(ip, [0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48) {
        Benchmarking
    } else if in_v6(ip, [0x2001, 0, 0, 0, 0, 0, 0, 0], 32)
        || in_v6(ip, [0x100, 0, 0, 0, 0, 0, 0, 0], 64)
        || !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)
    {
        Reserved
    } else {
        return None;
    };
    Some(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<AddressClass> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ok in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "169.253.255.255",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class(ok), None, "{ok}");
        }
    }

    #[test]
    fn every_ipv4_class_is_refused_and_named() {
        use AddressClass::*;
        for (ip, want) in [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", ThisNetwork),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.0.1", LinkLocal),
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("100.100.100.200", Metadata),
            ("192.0.0.192", Metadata),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("192.0.0.8", Reserved),
            ("240.0.0.1", Reserved),
            ("254.1.2.3", Reserved),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn every_ipv6_class_is_refused_and_named() {
        use AddressClass::*;
        for (ip, want) in [
            ("::", Unspecified),
            ("::1", Loopback),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("64:ff9b:1::a00:1", Private),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fd00:ec2::254", Metadata),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("2001:2::1", Benchmarking),
            ("2001::1", Reserved),
            ("100::1", Reserved),
            ("4000::1", Reserved),
            ("::2:0:0:1", Reserved),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_ipv4_are_judged_by_it() {
        use AddressClass::*;
        for (ip, want) in [
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", Metadata),
            ("::ffff:0.0.0.0", Unspecified),
            ("::127.0.0.1", Loopback),
            ("::192.168.0.1", Private),
            ("::169.254.169.254", Metadata),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("2002:7f00:1::", Loopback),
            ("2002:a00:1::1", Private),
            ("2002:a9fe:a9fe::", Metadata),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn check_ip_names_the_class_and_allow_private_lets_all_through() {
        let ip: IpAddr = "169.254.169.254".parse().unwrap();
        let err = check_ip("metadata.internal", ip, false).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cloud metadata"), "{text}");
        assert!(text.contains("metadata.internal"), "{text}");
        assert!(matches!(
            err,
            OutboundError::Refused {
                why: AddressClass::Metadata,
                ..
            }
        ));
        assert!(check_ip("metadata.internal", ip, true).is_ok());
        assert!(check_ip("one.one", "1.1.1.1".parse().unwrap(), false).is_ok());
    }
}
