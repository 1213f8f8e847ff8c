//! Static files answered by the I/O loop itself (`--static-map`), with no
//! Python involved: `cycle::head_step` hands a parsed head whose path lies
//! under a mapped prefix to [`answer`], which opens the file, decides the
//! response with the pure rules of `crate::static_files`, and queues the
//! head and a sendfile region (`OutChunk::File`) on the connection. The
//! connection then waits in `Phase::Own` until that is written, and reads
//! its next request.
//!
//! Paths are opened one component at a time below the mapped directory's
//! descriptor with `O_NOFOLLOW`: a symlink anywhere below the directory is
//! refused (404), so no name can lead outside it, and no other process can
//! swap a checked path for a symlink between a check and the open.
//!
//! Runs on the worker's I/O thread; never touches Python.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use super::conn::{Conn, Phase};
use super::cycle::{Ctx, Step};
use super::exchange::OutChunk;
use crate::http::RequestHead;
use crate::static_files::{self as rules, Encoding, FileMeta, RangeAnswer};
use crate::http::date::with_http_date;

/// The mapped directories of a worker, longest prefix first, each held
/// open (`O_PATH`) from the worker's start: a new tree put in place of the
/// directory itself is seen after HUP.
pub struct StaticFiles {
    mounts: Vec<(String, OwnedFd)>,
}

/// A request path under a mapping: its directory and the still-encoded
/// rest of the path.
pub struct Found<'a> {
    dir: RawFd,
    rest: &'a str,
}

fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: openat with a NUL-terminated name; the descriptor returned
    // is new and owned by the result.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A regular file's metadata, or `None` for anything else.
fn regular(fd: &OwnedFd) -> Option<FileMeta> {
    // SAFETY: fstat fills the zeroed local struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `fd` is open.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    Some(FileMeta { size: st.st_size as u64, mtime: st.st_mtime, mtime_nsec: st.st_mtime_nsec })
}

/// Open a regular file by name in directory `dir` (no symlink followed;
/// non-blocking, so a FIFO never stalls the loop).
fn open_file(dir: RawFd, name: &[u8]) -> Option<(File, FileMeta)> {
    let name = CString::new(name).ok()?;
    let fd = open_at(dir, &name, libc::O_RDONLY | libc::O_NONBLOCK).ok()?;
    let meta = regular(&fd)?;
    Some((File::from(fd), meta))
}

/// The file `components` name below `root`, opened one component at a
/// time, with the directory it is in (for a precompressed sibling; `None`
/// when that is `root` itself).
fn open_beneath(root: RawFd, components: &[Vec<u8>]) -> Option<(Option<OwnedFd>, File, FileMeta)> {
    let (last, dirs) = components.split_last()?;
    let mut dir: Option<OwnedFd> = None;
    for d in dirs {
        let name = CString::new(d.as_slice()).ok()?;
        let parent = dir.as_ref().map_or(root, |d| d.as_raw_fd());
        dir = Some(open_at(parent, &name, libc::O_PATH | libc::O_DIRECTORY).ok()?);
    }
    let (file, meta) = open_file(dir.as_ref().map_or(root, |d| d.as_raw_fd()), last)?;
    Some((dir, file, meta))
}

impl StaticFiles {
    /// Open the mapped directories (`(prefix, canonical directory)`).
    pub fn open(map: &[(String, PathBuf)]) -> io::Result<Option<StaticFiles>> {
        if map.is_empty() {
            return Ok(None);
        }
        let mut mounts = Vec::with_capacity(map.len());
        for (prefix, dir) in map {
            let path = CString::new(dir.as_os_str().as_encoded_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a static directory"))?;
            // SAFETY: open with a NUL-terminated path; the result is owned below.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
            if fd < 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(e.kind(), format!("static directory {}: {e}", dir.display())));
            }
            // SAFETY: `fd` was just opened and nothing else owns it.
            mounts.push((prefix.clone(), unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(Some(StaticFiles { mounts }))
    }

    /// The mapping a parsed request path falls under, if any.
    pub fn lookup<'a>(&self, path: &'a str) -> Option<Found<'a>> {
        self.mounts
            .iter()
            .find_map(|(prefix, fd)| rules::under_prefix(prefix, path).map(|rest| Found { dir: fd.as_raw_fd(), rest }))
    }

    /// True when a raw, unparsed request is for a mapped path: such a
    /// request is parsed and answered even while every app thread is busy.
    pub fn raw_match(&self, raw: &[u8]) -> bool {
        self.mounts.iter().any(|(prefix, _)| rules::raw_target_under(prefix, raw))
    }
}

/// What [`answer`] decided.
struct Reply {
    code: u16,
    head: Vec<u8>,
    /// The body: a file region, or a small in-memory text.
    body: Body,
}

enum Body {
    None,
    Text(&'static str),
    File { file: File, offset: u64, len: u64 },
}

fn small(code: u16, close: bool, text: &'static str, extra: &[(&str, &str)], is_head: bool) -> Reply {
    let len = text.len().to_string();
    let mut fields = vec![("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", len.as_str())];
    fields.extend_from_slice(extra);
    let head = with_http_date(|d| rules::response_head(code, d, close, &fields));
    Reply { code, head, body: if is_head { Body::None } else { Body::Text(text) } }
}

/// Decide the response to `head` for the file under `found`.
fn decide(head: &RequestHead, found: &Found<'_>, close: bool) -> Reply {
    let is_head = head.is_head();
    if head.method != "GET" && !is_head {
        return small(405, close, "405 Method Not Allowed\n", &[("Allow", "GET, HEAD")], false);
    }
    let not_found = || small(404, close, "404 Not Found\n", &[], is_head);
    let Some(components) = rules::components(found.rest) else { return not_found() };
    let Some((dir, file, meta)) = open_beneath(found.dir, &components) else { return not_found() };
    let dir = dir.as_ref().map_or(found.dir, |d| d.as_raw_fd());
    let name = components.last().map(Vec::as_slice).unwrap_or_default();
    let content_type = rules::content_type(name);
    let compressible = rules::compressible(content_type);
    let (mut file, mut meta, mut encoding) = (file, meta, Encoding::Identity);
    if compressible {
        for enc in rules::accepted_encodings(head.header("ACCEPT-ENCODING")) {
            let Some((suffix, _)) = enc.suffix_and_name() else { continue };
            let mut sibling = name.to_vec();
            sibling.extend_from_slice(suffix.as_bytes());
            if let Some((f, m)) = open_file(dir, &sibling) {
                (file, meta, encoding) = (f, m, enc);
                break;
            }
        }
    }
    let etag = rules::etag(meta, encoding);
    let last_modified = rules::last_modified(meta);
    let mut fields: Vec<(&str, &str)> = vec![
        ("Content-Type", content_type),
        ("ETag", &etag),
        ("Last-Modified", &last_modified),
        ("Cache-Control", rules::cache_control(name)),
        ("Accept-Ranges", "bytes"),
    ];
    if compressible {
        fields.push(("Vary", "Accept-Encoding"));
    }
    if let Some((_, coding)) = encoding.suffix_and_name() {
        fields.push(("Content-Encoding", coding));
    }
    if rules::not_modified(head.header("IF-NONE-MATCH"), head.header("IF-MODIFIED-SINCE"), &etag, meta) {
        let head = with_http_date(|d| rules::response_head(304, d, close, &fields));
        return Reply { code: 304, head, body: Body::None };
    }
    let (code, offset, len, content_range) =
        match rules::range(head.header("RANGE"), head.header("IF-RANGE"), meta.size, &etag, &last_modified) {
            RangeAnswer::Full => (200, 0, meta.size, None),
            RangeAnswer::Partial { start, end } => (206, start, end - start + 1, Some(format!("bytes {start}-{end}/{}", meta.size))),
            RangeAnswer::Unsatisfiable => {
                let unsatisfied = format!("bytes */{}", meta.size);
                return small(416, close, "416 Range Not Satisfiable\n", &[("Content-Range", &unsatisfied)], is_head);
            }
        };
    let length = len.to_string();
    fields.push(("Content-Length", &length));
    if let Some(cr) = &content_range {
        fields.push(("Content-Range", cr));
    }
    let head = with_http_date(|d| rules::response_head(code, d, close, &fields));
    let body = if is_head || len == 0 { Body::None } else { Body::File { file, offset, len } };
    Reply { code, head, body }
}

/// Answer a request for a mapped path and queue the response. A request
/// with a body is answered with `Connection: close` (its body is not
/// read). Returns the connection's next step.
pub fn answer(conn: &mut Conn, head: &RequestHead, has_body: bool, found: Found<'_>, ctx: &Ctx<'_>) -> Step {
    let close = head.close || has_body || ctx.draining;
    let reply = decide(head, &found, close);
    let sent = match &reply.body {
        Body::None => 0,
        Body::Text(t) => t.len() as u64,
        Body::File { len, .. } => *len,
    };
    log_access(conn, head, &reply, sent, ctx);
    conn.queue_own(reply.head);
    match reply.body {
        Body::None => {}
        Body::Text(t) => conn.queue_own(t.as_bytes().to_vec()),
        Body::File { file, offset, len } => conn.wq.push_back((OutChunk::File { file, offset, remaining: len }, false)),
    }
    ctx.completed.set(ctx.completed.get() + 1);
    conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
    conn.phase = if close { Phase::Closing } else { Phase::Own };
    Step::Again
}

/// One access-log line, when an access log is configured.
fn log_access(conn: &Conn, head: &RequestHead, reply: &Reply, sent: u64, ctx: &Ctx<'_>) {
    let Some(log) = crate::access_log::get() else { return };
    // The header lines, without the status line and the blank line.
    let fields = reply.head.splitn(2, |&b| b == b'\n').nth(1).unwrap_or_default();
    let outcome = crate::access_log::Outcome {
        status: rules::status_line(reply.code),
        sent,
        response_headers: fields,
        environ: &[],
        duration: ctx.now.elapsed(),
    };
    log.write_request(&conn.peer.remote_addr(conn.proxy.as_ref()), head, outcome);
}
