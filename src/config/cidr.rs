//! [`Cidr`]: an IPv4 or IPv6 address range, as in `trusted_addresses` and `allow_admin`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address range: `10.0.0.0/8`, `2001:db8::/32`, or a bare address (`/32` or `/128`).
///
/// Host bits below the prefix are cleared, as nginx does: `10.1.2.3/8` is `10.0.0.0/8`.
/// An IPv4 range also contains the IPv4-mapped IPv6 form of its addresses (`::ffff:10.1.2.3`),
/// which is how IPv4 clients appear on a dual-stack socket, and an IPv6 range contains an IPv4
/// address whose mapped form it contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The range of `prefix` leading bits of `addr`, or `None` if `prefix` is longer than the
    /// address (32 bits for IPv4, 128 for IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let network = match addr {
            IpAddr::V4(a) if prefix <= 32 => IpAddr::V4((u32::from(a) & mask32(prefix)).into()),
            IpAddr::V6(a) if prefix <= 128 => IpAddr::V6((u128::from(a) & mask128(prefix)).into()),
            _ => return None,
        };
        Some(Cidr { network, prefix })
    }

    /// Parses `addr/prefix` or a bare `addr`. The error says what is wrong with `s`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR like `10.0.0.0/8`"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().expect("one to three ASCII digits fit in a u8")
            }
            Some(p) => return Err(format!("`{s}`: prefix length `{p}` is not a number")),
        };
        Cidr::new(addr, prefix).ok_or_else(|| format!("`{s}`: prefix length must be at most {max}"))
    }

    /// Whether `ip` is in this range (see the type's doc for IPv4-mapped addresses).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
            (IpAddr::V6(_), IpAddr::V4(ip)) => self.contains(IpAddr::V6(ip.to_ipv6_mapped())),
        }
    }

    /// The first address of the range.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The number of leading bits that define the range.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        Cidr::parse(s)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_ranges() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains(ip("10.255.0.1")));
        assert!(!c.contains(ip("11.0.0.0")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("255.255.255.255")));
        assert!(
            !all.contains(ip("2001:db8::1")),
            "an IPv4 range holds no native IPv6 address"
        );
    }

    #[test]
    fn bare_addresses_are_single_hosts() {
        let v4 = Cidr::parse("192.168.1.7").unwrap();
        assert_eq!(v4.to_string(), "192.168.1.7/32");
        assert!(v4.contains(ip("192.168.1.7")));
        assert!(!v4.contains(ip("192.168.1.8")));
        let v6 = Cidr::parse("::1").unwrap();
        assert_eq!(v6.prefix(), 128);
        assert!(v6.contains(ip("::1")));
        assert!(!v6.contains(ip("::2")));
    }

    #[test]
    fn v6_ranges() {
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
        assert!(!c.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("fe80::1")));
    }

    #[test]
    fn mapped_addresses_match_across_families() {
        let v4 = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(v4.contains(ip("::ffff:127.0.0.1")));
        assert!(!v4.contains(ip("::ffff:128.0.0.1")));
        assert!(
            !v4.contains(ip("::127.0.0.1")),
            "IPv4-compatible is not IPv4-mapped"
        );
        let mapped = Cidr::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.contains(ip("10.9.9.9")));
        assert!(!mapped.contains(ip("11.0.0.0")));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0008",
            "10.0.0/8",
            "localhost",
            " 10.0.0.0/8",
            "10.0.0.0/8/8",
            "[::1]/128",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
