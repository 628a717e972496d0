//! `--trusted-proxies`: whose `X-Forwarded-For` is believed, and the client address it gives.

use core::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Why a `--trusted-proxies` list does not parse. Each variant carries the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCidr {
    /// One comma-separated entry is empty (`a,,b`).
    #[error("empty entry in the trusted-proxies list")]
    Empty,
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("`{0}` is not an IP address or CIDR")]
    BadAddress(String),
    /// The prefix length is not a number, or longer than the address (32 or 128 bits).
    #[error("`{0}` has an invalid prefix length")]
    BadPrefix(String),
}

/// An address block; `addr` has its host bits cleared. IPv4 blocks are kept as IPv4 even when
/// written IPv4-mapped (`::ffff:10.0.0.0/104`), so they match canonicalized addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cidr {
    V4(u32, u8),
    V6(u128, u8),
}

impl Cidr {
    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Cidr::V4(net, len), IpAddr::V4(a)) => u32::from(a) & mask32(len) == net,
            (Cidr::V6(net, len), IpAddr::V6(a)) => u128::from(a) & mask128(len) == net,
            _ => false,
        }
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// Reverse proxies whose `X-Forwarded-For` is believed (`--trusted-proxies`).
///
/// The default trusts nobody: `X-Forwarded-For` is then ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Cidr>,
}

impl TrustedProxies {
    /// Comma-separated CIDRs (`10.0.0.0/8`, `::1/128`) or bare addresses (= /32 or /128).
    ///
    /// A blank list trusts nobody. Blanks around entries are ignored; an empty entry between
    /// commas is an error. Host bits are allowed and ignored (`10.1.2.3/8` = `10.0.0.0/8`).
    pub fn parse(list: &str) -> Result<Self, InvalidCidr> {
        let mut nets = Vec::new();
        if list.trim().is_empty() {
            return Ok(TrustedProxies { nets });
        }
        for entry in list.split(',').map(str::trim) {
            if entry.is_empty() {
                return Err(InvalidCidr::Empty);
            }
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (entry, None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| InvalidCidr::BadAddress(entry.to_owned()))?;
            let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
            let len = match prefix {
                None => max,
                Some(p)
                    if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    match p.parse::<u8>() {
                        Ok(n) if n <= max => n,
                        _ => return Err(InvalidCidr::BadPrefix(entry.to_owned())),
                    }
                }
                Some(_) => return Err(InvalidCidr::BadPrefix(entry.to_owned())),
            };
            let net = match addr {
                IpAddr::V4(a) => Cidr::V4(u32::from(a) & mask32(len), len),
                IpAddr::V6(a) => match a.to_ipv4_mapped() {
                    // `::ffff:a.b.c.d/n` with n >= 96 is an IPv4 block in disguise.
                    Some(v4) if len >= 96 => {
                        let len = len - 96;
                        Cidr::V4(u32::from(v4) & mask32(len), len)
                    }
                    _ => Cidr::V6(u128::from(a) & mask128(len), len),
                },
            };
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        Ok(TrustedProxies { nets })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` (IPv4-mapped IPv6 compared as IPv4) lies in a trusted block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the peer itself unless the peer is trusted; then the right-most
    /// `X-Forwarded-For` address that is not itself trusted (all header occurrences, in order,
    /// comma-separated; whitespace trimmed). If every listed address is trusted, the left-most
    /// one; if an entry does not parse, stop there and use the last trusted address walked (the
    /// peer when none). IPv4-mapped IPv6 peers compare as IPv4.
    ///
    /// The address returned is canonical: an IPv4-mapped IPv6 address comes back as IPv4, so
    /// that per-IP limits count one client once whichever way its address reached us. Empty
    /// list elements (`a, ,b`) are skipped; entries with a port (`1.2.3.4:5`, `[::1]:5`) are
    /// read as their address.
    pub fn client_ip<'h>(
        &self,
        peer: IpAddr,
        x_forwarded_for: impl IntoIterator<Item = &'h [u8]>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        // Right to left: collected so that the walk can go backwards over header lines.
        let lines: Vec<&[u8]> = x_forwarded_for.into_iter().collect();
        let mut last_trusted = peer;
        for line in lines.iter().rev() {
            for entry in line.rsplit(|&b| b == b',') {
                let entry = trim_blanks(entry);
                if entry.is_empty() {
                    continue;
                }
                let Some(ip) = parse_forwarded_addr(entry) else {
                    return last_trusted;
                };
                if !self.contains(ip) {
                    return ip;
                }
                last_trusted = ip;
            }
        }
        last_trusted
    }
}

fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// An `X-Forwarded-For` element: an address, optionally with a port, canonicalized.
fn parse_forwarded_addr(entry: &[u8]) -> Option<IpAddr> {
    let s = core::str::from_utf8(entry).ok()?;
    let ip = if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else if let Ok(sa) = s.parse::<SocketAddr>() {
        sa.ip()
    } else {
        // `[::1]` without a port.
        let inner = s.strip_prefix('[')?.strip_suffix(']')?;
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(p: &TrustedProxies, peer: &str, xff: &[&str]) -> IpAddr {
        p.client_ip(ip(peer), xff.iter().map(|s| s.as_bytes()))
    }

    #[test]
    fn parse_reads_cidrs_and_bare_addresses() {
        let p = TrustedProxies::parse(" 10.0.0.0/8 , ::1/128,192.168.1.7, fd00::/8").unwrap();
        assert!(p.contains(ip("10.255.1.2")));
        assert!(!p.contains(ip("11.0.0.1")));
        assert!(p.contains(ip("::1")));
        assert!(!p.contains(ip("::2")));
        assert!(p.contains(ip("192.168.1.7")));
        assert!(!p.contains(ip("192.168.1.8")));
        assert!(p.contains(ip("fd12::5")));
    }

    #[test]
    fn prefix_zero_trusts_the_whole_family() {
        let p = TrustedProxies::parse("0.0.0.0/0").unwrap();
        assert!(p.contains(ip("1.2.3.4")));
        assert!(!p.contains(ip("2001:db8::1")));
        let p = TrustedProxies::parse("::/0").unwrap();
        assert!(p.contains(ip("2001:db8::1")));
    }

    #[test]
    fn host_bits_in_a_cidr_are_ignored() {
        let p = TrustedProxies::parse("10.1.2.3/8").unwrap();
        assert!(p.contains(ip("10.200.0.1")));
    }

    #[test]
    fn ipv4_mapped_addresses_compare_as_ipv4_both_ways() {
        let p = TrustedProxies::parse("10.0.0.0/8,::ffff:192.168.0.0/112").unwrap();
        assert!(p.contains(ip("::ffff:10.0.0.1")));
        assert!(p.contains(ip("192.168.3.4")));
        assert!(!p.contains(ip("192.169.0.1")));
    }

    #[test]
    fn blank_list_trusts_nobody_and_bad_entries_are_refused() {
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("  ").unwrap().is_empty());
        assert!(TrustedProxies::default().is_empty());
        assert_eq!(
            TrustedProxies::parse("10.0.0.1,,::1"),
            Err(InvalidCidr::Empty)
        );
        assert_eq!(
            TrustedProxies::parse("10.0.0.300"),
            Err(InvalidCidr::BadAddress("10.0.0.300".into()))
        );
        assert_eq!(
            TrustedProxies::parse("localhost"),
            Err(InvalidCidr::BadAddress("localhost".into()))
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "1.2.3.4/0008",
        ] {
            assert_eq!(
                TrustedProxies::parse(bad),
                Err(InvalidCidr::BadPrefix(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn untrusted_peer_ignores_x_forwarded_for() {
        let p = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client(&p, "203.0.113.9", &["1.1.1.1"]), ip("203.0.113.9"));
        assert_eq!(
            client(&TrustedProxies::default(), "10.0.0.1", &["1.1.1.1"]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_peer_gives_the_right_most_untrusted_address() {
        let p = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            client(&p, "10.0.0.1", &["6.6.6.6, 203.0.113.9, 10.0.0.7"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_peer_without_x_forwarded_for_is_the_client() {
        let p = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client(&p, "10.0.0.1", &[]), ip("10.0.0.1"));
        assert_eq!(client(&p, "10.0.0.1", &[" , "]), ip("10.0.0.1"));
    }

    #[test]
    fn multiple_header_lines_are_one_list_in_order() {
        let p = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            client(&p, "10.0.0.1", &["203.0.113.9", "10.0.0.2,10.0.0.3"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            client(&p, "10.0.0.1", &["1.1.1.1", "2.2.2.2"]),
            ip("2.2.2.2")
        );
    }

    #[test]
    fn all_trusted_gives_the_left_most_address() {
        let p = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            client(&p, "10.0.0.1", &["10.0.0.5,\t10.0.0.6", "10.0.0.7"]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn garbage_entry_stops_the_walk_at_the_last_trusted_address() {
        let p = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            client(&p, "10.0.0.1", &["1.1.1.1, unknown, 10.0.0.9"]),
            ip("10.0.0.9")
        );
        assert_eq!(
            client(&p, "10.0.0.1", &["1.1.1.1, unknown"]),
            ip("10.0.0.1")
        );
        let lines: [&[u8]; 1] = [b"1.1.1.1, \xff"];
        assert_eq!(p.client_ip(ip("10.0.0.1"), lines), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_entries_with_ports_and_brackets_are_read() {
        let p = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client(&p, "10.0.0.1", &["1.2.3.4:5678"]), ip("1.2.3.4"));
        assert_eq!(
            client(&p, "10.0.0.1", &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            client(&p, "10.0.0.1", &["[2001:db8::1]"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn mapped_peer_and_entries_come_back_as_ipv4() {
        let p = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            client(&p, "::ffff:10.0.0.1", &["::ffff:1.2.3.4"]),
            ip("1.2.3.4")
        );
        assert_eq!(client(&p, "::ffff:8.8.8.8", &["1.2.3.4"]), ip("8.8.8.8"));
    }
}
