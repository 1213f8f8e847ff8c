//! The PROXY protocol, versions 1 (text) and 2 (binary), read from the
//! start of a connection when `--proxy-protocol` is on.
//!
//! Pure: parses bytes, says how many it used; the I/O loop checks the peer
//! against `proxy_allow_ips` before calling it and applies the result to the
//! connection's addresses.

use super::error::{lossy, HttpError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The v2 signature (12 bytes).
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Longest v1 line, CRLF included (the spec's bound).
const V1_MAX_LINE: usize = 107;

/// Which versions the `proxy_protocol` setting accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Off,
    V1,
    V2,
    Auto,
}

/// What a PROXY header said about the original connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    /// `TCP4`, `TCP6`, `LOCAL` or `UNSPEC` (environ `PROXY_PROTOCOL`).
    pub protocol: &'static str,
    /// The original client, when the header carried addresses.
    pub client: Option<(IpAddr, u16)>,
    /// The proxy's own address as the client reached it.
    pub proxy: Option<(IpAddr, u16)>,
}

/// The result of looking for a PROXY header.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyParsed {
    /// A header was parsed; this many bytes belong to it.
    Header(ProxyInfo, usize),
    /// The connection does not start with a PROXY header.
    Absent,
    /// More bytes are needed to decide.
    Incomplete,
}

/// True when the buffer starts with a complete PROXY signature (v1's
/// `PROXY ` or v2's 12 bytes) of an accepted version: the peer must then be
/// allowed before the rest is even parsed (gunicorn answers 403 first).
pub fn has_signature(buf: &[u8], mode: ProxyMode) -> bool {
    let v2 = matches!(mode, ProxyMode::V2 | ProxyMode::Auto);
    let v1 = matches!(mode, ProxyMode::V1 | ProxyMode::Auto);
    (v2 && buf.starts_with(V2_SIGNATURE)) || (v1 && buf.starts_with(b"PROXY "))
}

/// Parse a PROXY header at the start of the buffer, if there is one of an
/// accepted version; `Incomplete` while more bytes could still make one.
pub fn parse(buf: &[u8], mode: ProxyMode) -> Result<ProxyParsed, HttpError> {
    if mode == ProxyMode::Off {
        return Ok(ProxyParsed::Absent);
    }
    let v2 = matches!(mode, ProxyMode::V2 | ProxyMode::Auto);
    let v1 = matches!(mode, ProxyMode::V1 | ProxyMode::Auto);
    let n = buf.len().min(12);
    if v2 && buf[..n] == V2_SIGNATURE[..n] {
        return if buf.len() < 12 { Ok(ProxyParsed::Incomplete) } else { parse_v2(buf) };
    }
    let n = buf.len().min(6);
    if v1 && buf[..n] == b"PROXY "[..n] {
        return if buf.len() < 6 { Ok(ProxyParsed::Incomplete) } else { parse_v1(buf) };
    }
    Ok(ProxyParsed::Absent)
}

fn parse_v1(buf: &[u8]) -> Result<ProxyParsed, HttpError> {
    // The bound is on the line, however its bytes arrived: a line that
    // does not end within `V1_MAX_LINE` bytes is refused.
    let end = match memchr::memmem::find(buf, b"\r\n") {
        Some(i) if i + 2 <= V1_MAX_LINE => i,
        Some(_) => return Err(HttpError::InvalidProxyLine(lossy(&buf[..V1_MAX_LINE]))),
        None if buf.len() >= V1_MAX_LINE => return Err(HttpError::InvalidProxyLine(lossy(&buf[..V1_MAX_LINE]))),
        None => return Ok(ProxyParsed::Incomplete),
    };
    let line = &buf[..end];
    let bad = || HttpError::InvalidProxyLine(lossy(line));
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    let bits: Vec<&str> = text.split(' ').collect();
    if bits.len() != 6 {
        return Err(bad());
    }
    let protocol = match bits[1] {
        "TCP4" => "TCP4",
        "TCP6" => "TCP6",
        other => return Err(HttpError::InvalidProxyLine(format!("protocol '{other}' not supported"))),
    };
    let parse_addr = |s: &str| -> Result<IpAddr, HttpError> {
        if protocol == "TCP4" {
            s.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| bad())
        } else {
            s.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| bad())
        }
    };
    let parse_port = |s: &str| -> Result<u16, HttpError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u16>().map_err(|_| bad())
    };
    let info = ProxyInfo {
        protocol,
        client: Some((parse_addr(bits[2])?, parse_port(bits[4])?)),
        proxy: Some((parse_addr(bits[3])?, parse_port(bits[5])?)),
    };
    Ok(ProxyParsed::Header(info, end + 2))
}

fn parse_v2(buf: &[u8]) -> Result<ProxyParsed, HttpError> {
    if buf.len() < 16 {
        return Ok(ProxyParsed::Incomplete);
    }
    let ver_cmd = buf[12];
    let fam_proto = buf[13];
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if ver_cmd >> 4 != 2 {
        return Err(HttpError::InvalidProxyHeader("unsupported version"));
    }
    let command = ver_cmd & 0x0f;
    if command > 1 {
        return Err(HttpError::InvalidProxyHeader("unsupported command"));
    }
    let total = 16 + len;
    if buf.len() < total {
        return Ok(ProxyParsed::Incomplete);
    }
    let none = |protocol| ProxyInfo { protocol, client: None, proxy: None };
    if command == 0 {
        return Ok(ProxyParsed::Header(none("LOCAL"), total));
    }
    let family = fam_proto >> 4;
    if family == 0 {
        return Ok(ProxyParsed::Header(none("UNSPEC"), total));
    }
    if fam_proto & 0x0f != 1 {
        return Err(HttpError::InvalidProxyHeader("only TCP protocol is supported"));
    }
    let data = &buf[16..total];
    let port = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    let info = match family {
        1 => {
            if len < 12 {
                return Err(HttpError::InvalidProxyHeader("insufficient address data for IPv4"));
            }
            let src = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
            let dst = Ipv4Addr::new(data[4], data[5], data[6], data[7]);
            ProxyInfo { protocol: "TCP4", client: Some((src.into(), port(8))), proxy: Some((dst.into(), port(10))) }
        }
        2 => {
            if len < 36 {
                return Err(HttpError::InvalidProxyHeader("insufficient address data for IPv6"));
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&data[0..16]);
            d.copy_from_slice(&data[16..32]);
            ProxyInfo {
                protocol: "TCP6",
                client: Some((Ipv6Addr::from(s).into(), port(32))),
                proxy: Some((Ipv6Addr::from(d).into(), port(34))),
            }
        }
        _ => return Err(HttpError::InvalidProxyHeader("unsupported address family")),
    };
    Ok(ProxyParsed::Header(info, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1() {
        let buf = b"PROXY TCP4 192.168.0.1 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n\r\n";
        for cut in 0..43 {
            assert_eq!(parse(&buf[..cut], ProxyMode::V1), Ok(ProxyParsed::Incomplete), "cut {cut}");
        }
        let ProxyParsed::Header(info, n) = parse(buf, ProxyMode::Auto).unwrap() else { panic!() };
        assert_eq!(n, 43);
        assert_eq!(info.client, Some(("192.168.0.1".parse().unwrap(), 56324)));
        assert_eq!(info.protocol, "TCP4");
        assert!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", ProxyMode::V1).is_err());
        assert!(parse(b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyMode::V1).is_err());
        assert!(parse(b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", ProxyMode::V1).is_err());
        assert_eq!(parse(b"GET / HTTP/1.1\r\n", ProxyMode::Auto), Ok(ProxyParsed::Absent));
        assert_eq!(parse(buf, ProxyMode::V2), Ok(ProxyParsed::Absent));
        assert!(has_signature(b"PROXY UNKNOWN\r\n", ProxyMode::V1));
        assert!(!has_signature(b"PROXY UNKNOWN\r\n", ProxyMode::V2));
        assert!(!has_signature(b"PROX", ProxyMode::Auto));
    }

    /// Found by the `proxy` fuzz target: a line longer than the spec's 107
    /// bytes was accepted when it arrived whole and refused when its first
    /// 107 bytes arrived alone. It is refused either way.
    #[test]
    fn v1_line_bound_does_not_depend_on_reads() {
        let mut line = b"PROXY TCP4 1.2.3.4 5.6.7.8 ".to_vec();
        line.extend(std::iter::repeat_n(b'0', V1_MAX_LINE - line.len() - 4));
        line.extend_from_slice(b"1 2\r\n");
        assert_eq!(line.len(), V1_MAX_LINE + 1);
        assert!(parse(&line[..V1_MAX_LINE], ProxyMode::V1).is_err());
        assert!(parse(&line, ProxyMode::V1).is_err());
        // The longest line the spec allows is accepted.
        let ok = [&line[..27], &line[28..]].concat();
        assert_eq!(ok.len(), V1_MAX_LINE);
        assert!(matches!(parse(&ok, ProxyMode::V1), Ok(ProxyParsed::Header(_, V1_MAX_LINE))));
    }

    /// Found by the `conn_real` fuzz target: a line with no end quoted
    /// everything that had arrived in its error, so the 400's text depended
    /// on how the bytes were read. It quotes the bounded line only.
    #[test]
    fn v1_error_quotes_the_bounded_line_only() {
        let mut buf = b"PROXY UNKNOWN ".to_vec();
        buf.extend(std::iter::repeat_n(b'x', 300));
        let short = parse(&buf[..V1_MAX_LINE], ProxyMode::V1).unwrap_err();
        let long = parse(&buf, ProxyMode::V1).unwrap_err();
        assert_eq!(short, long);
        assert_eq!(long, HttpError::InvalidProxyLine(lossy(&buf[..V1_MAX_LINE])));
    }

    #[test]
    fn v2() {
        let mut buf = V2_SIGNATURE.to_vec();
        buf.extend_from_slice(&[0x21, 0x11, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 0x1f, 0x90, 0, 80]);
        buf.extend_from_slice(b"GET");
        for cut in 0..28 {
            assert_eq!(parse(&buf[..cut], ProxyMode::V2), Ok(ProxyParsed::Incomplete), "cut {cut}");
        }
        let ProxyParsed::Header(info, n) = parse(&buf, ProxyMode::Auto).unwrap() else { panic!() };
        assert_eq!(n, 28);
        assert_eq!(info.client, Some(("1.2.3.4".parse().unwrap(), 8080)));
        assert_eq!(info.proxy, Some(("5.6.7.8".parse().unwrap(), 80)));
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        let ProxyParsed::Header(info, _) = parse(&local, ProxyMode::V2).unwrap() else { panic!() };
        assert_eq!(info.protocol, "LOCAL");
        let mut bad = V2_SIGNATURE.to_vec();
        bad.extend_from_slice(&[0x31, 0x11, 0, 0]);
        assert!(parse(&bad, ProxyMode::V2).is_err());
    }
}
