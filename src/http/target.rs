//! The request-target's parts: path, query and fragment, split the way
//! Python's `urllib.parse.urlsplit` splits the forms a server sees, and kept
//! as byte ranges of the target so a parsed head holds one string for all
//! of them.
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
    fn parts_are_the_split_targets_parts() {
        for target in ["/", "/a?b#c", "/a#b?c", "//x/y?z", "http://host", "http://h:8/p?q", "*", "h:443", "/?", "/#", "?x"] {
            let parts = TargetParts::of(target);
            assert_eq!((parts.path(target), parts.query(target), parts.fragment(target)), split_target(target), "{target}");
        }
    }
}
