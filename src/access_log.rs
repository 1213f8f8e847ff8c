//! The access log: gunicorn's `--access-logformat` atoms (`h l u t r m U q
//! H s B b f a T D M L p`, `{header}i`, `{header}o`, `{var}e`), parsed once
//! (with the widths and flags of Python's `%` formatting, `%(p)-8s`) and
//! rendered in Rust for each finished request, one `write` per line, to
//! `--access-logfile` (`-` is stdout). Reopened on USR1.
//!
//! Configured in the master before fork; written from executor threads with
//! the GIL released.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// One piece of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `%(name)s`: an atom name as gunicorn spells it, with the width,
    /// precision and flags Python's `%` formatting would apply
    /// (`%(p)-8s`, `%(h)15s`, `%(D)06d`).
    Atom(String, Spec),
}

/// A `%` conversion's flags, width and precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Spec {
    /// `-`: pad on the right.
    left: bool,
    /// `0` with a numeric conversion: pad with zeros.
    zeros: bool,
    width: usize,
    /// For `s`: at most this many characters.
    precision: Option<usize>,
}

impl Spec {
    /// Read flags, width, precision and the conversion letter from the
    /// start of `tail`; returns the spec and how many bytes it took.
    fn parse(tail: &str) -> (Spec, usize) {
        let b = tail.as_bytes();
        let mut i = 0;
        let mut spec = Spec::default();
        let mut zero = false;
        while i < b.len() && matches!(b[i], b'-' | b'0' | b' ' | b'+' | b'#') {
            spec.left |= b[i] == b'-';
            zero |= b[i] == b'0';
            i += 1;
        }
        let digits = |i: &mut usize| {
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            tail[start..*i].parse::<usize>().ok()
        };
        spec.width = digits(&mut i).unwrap_or(0).min(4096);
        if i < b.len() && b[i] == b'.' {
            i += 1;
            spec.precision = Some(digits(&mut i).unwrap_or(0));
        }
        // The conversion letter (normally `s`).
        let conv = tail[i..].chars().next();
        spec.zeros = zero && !spec.left && matches!(conv, Some('d' | 'i'));
        (spec, i + conv.map(char::len_utf8).unwrap_or(0))
    }

    fn apply(&self, value: String, out: &mut String) {
        let value = match self.precision {
            Some(p) if !self.zeros => value.chars().take(p).collect(),
            _ => value,
        };
        let len = value.chars().count();
        let pad = self.width.saturating_sub(len);
        if pad == 0 {
            out.push_str(&value);
        } else if self.left {
            out.push_str(&value);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(if self.zeros { '0' } else { ' ' }, pad));
            out.push_str(&value);
        }
    }
}

/// A parsed `access_log_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    segments: Vec<Segment>,
}

impl Format {
    /// Parse a Python %-format with `%(name)s` atoms (`%%` is a percent).
    pub fn parse(fmt: &str) -> Format {
        let mut segments = Vec::new();
        let mut lit = String::new();
        let mut rest = fmt;
        while let Some(i) = rest.find('%') {
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(stripped) = after.strip_prefix('%') {
                lit.push('%');
                rest = stripped;
            } else if let Some(inner) = after.strip_prefix('(') {
                match inner.find(')') {
                    Some(close) => {
                        let name = &inner[..close];
                        let tail = &inner[close + 1..];
                        let (spec, skip) = Spec::parse(tail);
                        if !lit.is_empty() {
                            segments.push(Segment::Literal(std::mem::take(&mut lit)));
                        }
                        segments.push(Segment::Atom(name.to_owned(), spec));
                        rest = &tail[skip..];
                    }
                    None => {
                        lit.push('%');
                        rest = after;
                    }
                }
            } else {
                lit.push('%');
                rest = after;
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            segments.push(Segment::Literal(lit));
        }
        Format { segments }
    }

    /// The `{var}e` atoms the format uses (their values come from the
    /// environ, which only the executor can read).
    pub fn environ_vars(&self) -> Vec<String> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Atom(a, _) if a.starts_with('{') && a.ends_with("}e") => Some(a[1..a.len() - 2].to_owned()),
                _ => None,
            })
            .collect()
    }
}

/// Everything one line can show.
pub struct Entry<'a> {
    pub remote_addr: &'a str,
    pub method: &'a str,
    pub raw_uri: &'a str,
    pub protocol: &'a str,
    pub path_info: &'a str,
    pub query: &'a str,
    /// The status line the app gave (`200 OK`).
    pub status: &'a str,
    /// Body bytes sent.
    pub sent: u64,
    /// Request headers (uppercase names).
    pub request_headers: &'a [(Cow<'static, str>, Vec<u8>)],
    /// Response headers as encoded (`Name: value\r\n` lines).
    pub response_headers: &'a [u8],
    /// `{var}e` values, lowercase names.
    pub environ: &'a [(String, String)],
    pub duration: Duration,
    /// `[23/Nov/2026:16:31:30 +0000]`.
    pub time: &'a str,
    pub pid: u32,
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// `Basic` credentials' user name, as gunicorn's `_get_user`.
fn basic_user(headers: &[(Cow<'static, str>, Vec<u8>)]) -> Option<String> {
    let (_, v) = headers.iter().find(|(n, _)| n == "AUTHORIZATION")?;
    let v = latin1(v);
    let (scheme, creds) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(creds.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':').map(|(u, _)| u.to_owned()).unwrap_or(text))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

impl Format {
    /// Render one line (without the newline). Unknown atoms print `-`, as
    /// in gunicorn.
    pub fn render(&self, e: &Entry<'_>) -> String {
        let mut out = String::with_capacity(128);
        let us = e.duration.as_micros() as u64;
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => out.push_str(l),
                Segment::Atom(a, spec) => {
                    let value: String = match a.as_str() {
                        "h" => e.remote_addr.to_owned(),
                        "l" => "-".into(),
                        "u" => basic_user(e.request_headers).unwrap_or_else(|| "-".into()),
                        "t" => e.time.to_owned(),
                        "r" => format!("{} {} {}", e.method, e.raw_uri, e.protocol),
                        "s" => e.status.split_whitespace().next().unwrap_or("-").to_owned(),
                        "m" => e.method.to_owned(),
                        "U" => e.path_info.to_owned(),
                        "q" => e.query.to_owned(),
                        "H" => e.protocol.to_owned(),
                        "b" | "B" => e.sent.to_string(),
                        "f" => header(e.request_headers, "REFERER").unwrap_or_else(|| "-".into()),
                        "a" => header(e.request_headers, "USER-AGENT").unwrap_or_else(|| "-".into()),
                        "T" => (us / 1_000_000).to_string(),
                        "D" => us.to_string(),
                        "M" => (us / 1000).to_string(),
                        "L" => format!("{}.{:06}", us / 1_000_000, us % 1_000_000),
                        "p" => format!("<{}>", e.pid),
                        other if other.starts_with('{') && other.ends_with("}i") => {
                            let name = other[1..other.len() - 2].to_ascii_uppercase();
                            header(e.request_headers, &name).unwrap_or_else(|| "-".into())
                        }
                        other if other.starts_with('{') && other.ends_with("}o") => {
                            let name = &other[1..other.len() - 2];
                            response_header(e.response_headers, name).unwrap_or_else(|| "-".into())
                        }
                        other if other.starts_with('{') && other.ends_with("}e") => {
                            let name = other[1..other.len() - 2].to_ascii_lowercase();
                            e.environ.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()).unwrap_or_else(|| "-".into())
                        }
                        _ => "-".into(),
                    };
                    if *spec == Spec::default() {
                        out.push_str(&value);
                    } else {
                        spec.apply(value, &mut out);
                    }
                }
            }
        }
        out
    }
}

fn header(headers: &[(Cow<'static, str>, Vec<u8>)], name: &str) -> Option<String> {
    let values: Vec<String> = headers.iter().filter(|(n, _)| n == name).map(|(_, v)| latin1(v)).collect();
    // gunicorn's atoms dict keeps the last of repeated headers.
    values.last().cloned()
}

fn response_header(encoded: &[u8], name: &str) -> Option<String> {
    encoded
        .split(|&b| b == b'\n')
        .rev()
        .find_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            let (n, v) = line.split_at(colon);
            (latin1(n).eq_ignore_ascii_case(name)).then(|| latin1(&v[1..]).trim().to_owned())
        })
}

/// The access log's time atom: `[23/Nov/2026:16:31:30 +0000]`.
pub fn now_atom() -> String {
    // SAFETY: as in log::timestamp: locals only.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        let mut buf = [0u8; 64];
        let n = libc::strftime(buf.as_mut_ptr() as *mut libc::c_char, buf.len(), c"[%d/%b/%Y:%H:%M:%S %z]".as_ptr(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// Where access lines are written (besides syslog).
enum Sink {
    Stdout,
    File(String),
    /// Only syslog (`--log-syslog` without `--access-logfile`).
    None,
}

/// The configured access log.
pub struct AccessLog {
    pub format: Format,
    sink: Sink,
    file: Mutex<Option<File>>,
}

static ACCESS_LOG: OnceLock<AccessLog> = OnceLock::new();

/// Configure the access log: `--access-logfile` (`-` is stdout), or
/// `None` when only syslog receives the lines. Called in the master.
pub fn init(target: Option<&str>, format: &str) -> std::io::Result<()> {
    let (sink, file) = match target {
        Some("-") => (Sink::Stdout, None),
        Some(path) => (Sink::File(path.to_owned()), Some(OpenOptions::new().create(true).append(true).open(path)?)),
        None => (Sink::None, None),
    };
    let _ = ACCESS_LOG.set(AccessLog { format: Format::parse(format), sink, file: Mutex::new(file) });
    Ok(())
}

/// The access log, when one is configured.
pub fn get() -> Option<&'static AccessLog> {
    ACCESS_LOG.get()
}

/// The response's part of a finished request's access line.
pub struct Outcome<'a> {
    /// The status line that went out (`200 OK`).
    pub status: &'a str,
    /// Body bytes sent.
    pub sent: u64,
    /// Response headers as encoded (`Name: value\r\n` lines).
    pub response_headers: &'a [u8],
    /// `{var}e` values, lowercase names.
    pub environ: &'a [(String, String)],
    pub duration: Duration,
}

impl AccessLog {
    /// Write the line of a finished request from `remote_addr` (the
    /// client's address, empty for a unix socket).
    pub fn write_request(&self, remote_addr: &str, head: &crate::http::RequestHead, outcome: Outcome<'_>) {
        let path_info: String = crate::http::target::percent_decode(head.path()).iter().map(|&b| b as char).collect();
        let protocol = format!("HTTP/{}.{}", head.version.major, head.version.minor);
        self.write(&Entry {
            remote_addr,
            method: &head.method,
            raw_uri: &head.target,
            protocol: &protocol,
            path_info: &path_info,
            query: head.query(),
            status: outcome.status,
            sent: outcome.sent,
            request_headers: &head.headers,
            response_headers: outcome.response_headers,
            environ: outcome.environ,
            duration: outcome.duration,
            time: &now_atom(),
            pid: std::process::id(),
        });
    }

    /// Write one line.
    pub fn write(&self, entry: &Entry<'_>) {
        let mut line = self.format.render(entry);
        crate::syslog::access_line(&line);
        if crate::pylog::log(true, 20, &line) {
            // Python's logging has the line, and the access-log file or
            // stdout as a handler of gunicorn.access (as in gunicorn).
            return;
        }
        line.push('\n');
        match self.sink {
            Sink::Stdout => {
                let _ = std::io::stdout().lock().write_all(line.as_bytes());
            }
            Sink::File(_) => {
                let guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(f) = guard.as_ref() {
                    let _ = (&*f).write_all(line.as_bytes());
                }
            }
            Sink::None => {}
        }
    }
}

/// Reopen the access log file (USR1).
pub fn reopen() {
    if let Some(log) = ACCESS_LOG.get() {
        if let Sink::File(path) = &log.sink {
            if let Ok(f) = OpenOptions::new().create(true).append(true).open(path) {
                *log.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"";

    fn entry<'a>(headers: &'a [(Cow<'static, str>, Vec<u8>)], env: &'a [(String, String)]) -> Entry<'a> {
        Entry {
            remote_addr: "127.0.0.1",
            method: "GET",
            raw_uri: "/a?b=1",
            protocol: "HTTP/1.1",
            path_info: "/a",
            query: "b=1",
            status: "200 OK",
            sent: 13,
            request_headers: headers,
            response_headers: b"Content-Type: text/plain\r\nX-Id: 7\r\n",
            environ: env,
            duration: Duration::from_micros(1_234_567),
            time: "[23/Nov/2026:16:31:30 +0000]",
            pid: 42,
        }
    }

    #[test]
    fn default_format() {
        let h = vec![(Cow::from("USER-AGENT"), b"curl/8".to_vec()), (Cow::from("REFERER"), b"http://r/".to_vec())];
        let line = Format::parse(DEFAULT).render(&entry(&h, &[]));
        assert_eq!(line, "127.0.0.1 - - [23/Nov/2026:16:31:30 +0000] \"GET /a?b=1 HTTP/1.1\" 200 13 \"http://r/\" \"curl/8\"");
    }

    #[test]
    fn every_atom() {
        let h = vec![(Cow::from("AUTHORIZATION"), b"Basic dXNlcjpwYXNz".to_vec()), (Cow::from("X-REQ"), b"r".to_vec())];
        let env = vec![("remote_port".to_string(), "5555".to_string())];
        let f = Format::parse("%(u)s|%(m)s|%(U)s|%(q)s|%(H)s|%(B)s|%(T)s|%(D)s|%(M)s|%(L)s|%(p)s|%({x-req}i)s|%({x-id}o)s|%({REMOTE_PORT}e)s|%(zz)s|100%%");
        assert_eq!(f.render(&entry(&h, &env)), "user|GET|/a|b=1|HTTP/1.1|13|1|1234567|1234|1.234567|<42>|r|7|5555|-|100%");
        assert_eq!(f.environ_vars(), vec!["REMOTE_PORT"]);
    }

    #[test]
    fn widths_and_flags_as_python_formats_them() {
        let f = Format::parse("[%(p)-9s][%(m)6s][%(U).2s][%(D)09d][%(s)-2s][%(H)s]");
        assert_eq!(f.render(&entry(&[], &[])), "[<42>     ][   GET][/a][001234567][200][HTTP/1.1]");
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("!!").is_none());
    }
}
