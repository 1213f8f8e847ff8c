//! The request-target's parts: path, query and fragment, split the way
//! Python's `urllib.parse.urlsplit` splits the forms a server sees, and kept
//! as byte ranges of the target so a parsed head holds one string for all
//! of them.
//!
//! The absolute form's syntax is checked here too ([`valid_absolute_form`]):
//! its authority must be a host with an optional port.
//!
//! Pure: strings in, slices or ranges out.

/// Split a request-target into (path, query, fragment) the way Python's
/// `urllib.parse.urlsplit` does for the forms a server sees.
pub fn split_target(target: &str) -> (&str, &str, &str) {
    let (rest, fragment) = target.split_once('#').unwrap_or((target, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = if rest.starts_with('/') {
        rest
    } else if let Some(i) = rest.find("://") {
        // absolute-form: the path starts after the authority.
        let after = &rest[i + 3..];
        after.find('/').map(|j| &after[j..]).unwrap_or("")
    } else if rest == "*" {
        rest
    } else {
        // authority-form (CONNECT host:port): urlsplit reads "host" as a
        // scheme and the port as the path.
        rest.split_once(':').map(|(_, p)| p).unwrap_or(rest)
    };
    (path, query, fragment)
}

/// True when `target` is an absolute-form request-target whose scheme and
/// authority have RFC 3986 syntax: `scheme "://" host [":" port]`, then a
/// path, query or nothing. The host is a non-empty reg-name (which also
/// covers dotted IPv4), or an IPv6 or IPvFuture literal in brackets; the
/// port is digits (possibly none). userinfo is refused, as RFC 9110 §4.2.4
/// asks of http(s) targets, and so is an empty host (§4.2.1).
pub(crate) fn valid_absolute_form(target: &[u8]) -> bool {
    let Some(i) = memchr::memmem::find(target, b"://") else {
        return false;
    };
    let (scheme, rest) = (&target[..i], &target[i + 3..]);
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let end = rest.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    scheme_ok && valid_authority(&rest[..end])
}

/// `host [":" port]` with the host as [`valid_absolute_form`] describes.
fn valid_authority(authority: &[u8]) -> bool {
    let (host_ok, after) = match authority.strip_prefix(b"[") {
        Some(inner) => match inner.iter().position(|&b| b == b']') {
            Some(close) => (ip_literal(&inner[..close]), &inner[close + 1..]),
            None => return false,
        },
        None => {
            let end = authority.iter().position(|&b| b == b':').unwrap_or(authority.len());
            (reg_name(&authority[..end]), &authority[end..])
        }
    };
    host_ok
        && match after {
            [] => true,
            [b':', port @ ..] => port.iter().all(u8::is_ascii_digit),
            _ => false,
        }
}

/// RFC 3986 `unreserved / sub-delims`, the bytes a reg-name may hold
/// besides percent-encodings.
fn reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// A non-empty RFC 3986 reg-name.
fn reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                let hex = host.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if reg_name_byte(b) => i += 1,
            _ => return false,
        }
    }
    !host.is_empty()
}

/// What may stand between brackets: an IPv6 address (no zone identifier,
/// as in RFC 3986) or `"v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn ip_literal(inside: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inside {
        let dot = rest.iter().position(|&b| b == b'.').unwrap_or(0);
        let (version, tail) = (&rest[..dot], &rest[dot..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && tail.len() > 1
            && tail[1..].iter().all(|&b| reg_name_byte(b) || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Byte ranges of a target's parts in the target string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TargetParts {
    path: (usize, usize),
    query: (usize, usize),
    fragment: (usize, usize),
}

impl TargetParts {
    /// The ranges of [`split_target`]'s slices of `target`.
    pub(crate) fn of(target: &str) -> TargetParts {
        let (path, query, fragment) = split_target(target);
        // An empty part may be a literal "" outside the target.
        let range = |part: &str| {
            if part.is_empty() {
                return (0, 0);
            }
            let start = part.as_ptr() as usize - target.as_ptr() as usize;
            (start, start + part.len())
        };
        TargetParts { path: range(path), query: range(query), fragment: range(fragment) }
    }

    /// The path of `target` (the string these ranges were taken from).
    pub(crate) fn path<'a>(&self, target: &'a str) -> &'a str {
        &target[self.path.0..self.path.1]
    }

    /// The query of `target`, without `?`.
    pub(crate) fn query<'a>(&self, target: &'a str) -> &'a str {
        &target[self.query.0..self.query.1]
    }

    /// The fragment of `target`, without `#`.
    pub(crate) fn fragment<'a>(&self, target: &'a str) -> &'a str {
        &target[self.fragment.0..self.fragment.1]
    }
}

/// `urllib.parse.unquote_to_bytes`: `%XX` decoded, malformed escapes kept.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlsplit_forms() {
        assert_eq!(split_target("/a#b?c"), ("/a", "", "b?c"));
        assert_eq!(split_target("//x/y?z"), ("//x/y", "z", ""));
        assert_eq!(split_target("http://host"), ("", "", ""));
    }

    #[test]
    fn absolute_form_authorities() {
        for ok in ["http://h", "http://h/p", "HTTP://h:80?q", "h+t-t.p://h#f", "http://h:", "http://[::1]:8/p",
                   "http://[V1F.a:b]", "http://[::1]:", "http://%41%2f.x", "http://999.1.1.1"] {
            assert!(valid_absolute_form(ok.as_bytes()), "{ok}");
        }
        for bad in ["http://", "http://:80", "http://u@h", "http://h:8:9", "http://h:x", "http://[::1", "http://[]",
                    "http://[::g]", "http://[v.x]", "http://[v1.]", "http://[v1]", "1http://h",
                    "://h", "http://%4", "http://%zz", "http://h]", "http://h\\"] {
            assert!(!valid_absolute_form(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn parts_are_the_split_targets_parts() {
        for target in ["/", "/a?b#c", "/a#b?c", "//x/y?z", "http://host", "http://h:8/p?q", "*", "h:443", "/?", "/#", "?x"] {
            let parts = TargetParts::of(target);
            assert_eq!((parts.path(target), parts.query(target), parts.fragment(target)), split_target(target), "{target}");
        }
    }
}
