//! Address allow-lists (`forwarded_allow_ips`, `proxy_allow_ips`): which
//! peers may set forwarding headers or speak the PROXY protocol.
//!
//! Pure data: parses the setting once at startup and answers membership for
//! a peer address; never opens a socket.

use std::net::IpAddr;

/// One entry of an allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `*`: every peer.
    Any,
    /// An address with a prefix length (a plain address is a /32 or /128).
    Network { addr: IpAddr, prefix: u8 },
}

/// A parsed allow-list such as `127.0.0.1,::1,10.0.0.0/8` or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList {
    /// The entries, in the order given.
    entries: Vec<Entry>,
}

impl AllowList {
    /// Parse a comma-separated list; returns the offending entry on error.
    pub fn parse(spec: &str) -> Result<AllowList, String> {
        let mut entries = Vec::new();
        for raw in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if raw == "*" {
                entries.push(Entry::Any);
                continue;
            }
            let (addr, prefix) = match raw.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (raw, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| raw.to_owned())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| raw.to_owned())?,
                None => max,
            };
            entries.push(Entry::Network { addr, prefix });
        }
        Ok(AllowList { entries })
    }

    /// True when `peer` is allowed. IPv4-mapped IPv6 peers match IPv4 entries.
    pub fn allows(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
            v4 => v4,
        };
        self.entries.iter().any(|e| match e {
            Entry::Any => true,
            Entry::Network { addr, prefix } => in_network(peer, *addr, *prefix),
        })
    }
}

fn in_network(peer: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (peer, net) {
        (IpAddr::V4(p), IpAddr::V4(n)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            u32::from(p) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(n)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            u128::from(p) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership() {
        let l = AllowList::parse("127.0.0.1, ::1,10.0.0.0/8").unwrap();
        assert!(l.allows("127.0.0.1".parse().unwrap()));
        assert!(l.allows("::1".parse().unwrap()));
        assert!(l.allows("10.2.3.4".parse().unwrap()));
        assert!(l.allows("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!l.allows("192.168.1.1".parse().unwrap()));
        assert!(AllowList::parse("*").unwrap().allows("8.8.8.8".parse().unwrap()));
        assert!(!AllowList::parse("").unwrap().allows("127.0.0.1".parse().unwrap()));
        assert!(AllowList::parse("nope").is_err());
        assert!(AllowList::parse("10.0.0.0/33").is_err());
    }
}
