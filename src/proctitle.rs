//! Process titles, as `ps` shows them: `rsgi: master [app]` and
//! `rsgi: worker [app]` (gunicorn's `master [app]` / `worker [app]`).
//!
//! The title is written over the process's original argument area (the
//! range `/proc/self/stat` reports as arg_start..arg_end), which CPython has
//! copied away at startup, so nothing still reads it. Called in the master at
//! startup and in each worker after fork.

/// The argument area of this process, from `/proc/self/stat`.
fn arg_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // arg_start and arg_end are fields 48 and 49 (1-based); `rest` starts
    // at field 3.
    let start: usize = fields.get(48 - 3)?.parse().ok()?;
    let end: usize = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}

/// Set the title shown by `ps` (truncated to the original argument area).
pub fn set(title: &str) {
    if let Some((start, end)) = arg_area() {
        let len = end - start;
        let bytes = title.as_bytes();
        let n = bytes.len().min(len - 1);
        // SAFETY: [start, end) is this process's own argument area, mapped
        // and writable (it lives on the initial stack); CPython copied argv
        // out of it during startup.
        unsafe {
            let dst = start as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n);
            std::ptr::write_bytes(dst.add(n), 0, len - n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_argument_area() {
        let (start, end) = arg_area().expect("arg_start/arg_end in /proc/self/stat");
        assert!(end > start);
    }
}
