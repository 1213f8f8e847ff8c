//! Where a greenlet's interpreter frames live. Since Python 3.11 every
//! thread, and so every greenlet, keeps its frames in "data stack" chunks
//! of 16 KiB that CPython takes from its object arena allocator, which
//! maps each one with `mmap(2)` and unmaps it with `munmap(2)`. A greenlet
//! per request therefore paid a mapping, four page faults and an unmapping
//! (with its TLB flush) per request: a third of the hub thread's time
//! under a sleeping app (bench/PROFILE.md, "gevent: frame chunks").
//!
//! [`install`] puts an arena allocator in front of CPython's that serves
//! blocks smaller than an arena from the C heap (`malloc`, where a freed
//! chunk is the next greenlet's, with no system call) and passes arenas to
//! the allocator it replaces. A set of the blocks it handed out tells which
//! `free` is whose, so a chunk mapped before the switch is unmapped by the
//! allocator that mapped it. CPython calls both functions with the GIL
//! held; the set has its own lock all the same.
//!
//! Runs in a gevent worker, once, right after fork.

use std::collections::HashSet;
use std::ffi::c_void;
use std::sync::{Mutex, OnceLock};

use pyo3::ffi;

/// Blocks below this size come from the C heap: a frame chunk (16 KiB, or
/// one frame's size when larger) is; pymalloc's arenas (256 KiB on 3.10,
/// 1 MiB since) are not.
const HEAP_BELOW: usize = 256 * 1024;

/// What `install` replaced, and the blocks it has handed out from the heap.
struct State {
    previous: ffi::PyObjectArenaAllocator,
    from_heap: Mutex<HashSet<usize>>,
}

// SAFETY: `previous` holds CPython's allocator (function pointers and a
// context pointer CPython's own functions use); it is only called, never
// dereferenced here, and the set has its lock.
unsafe impl Send for State {}
// SAFETY: as for Send: nothing in State is mutated without the lock.
unsafe impl Sync for State {}

static STATE: OnceLock<State> = OnceLock::new();

/// Replace the arena allocator (once per process; later calls do nothing).
/// Called with the GIL held.
pub fn install() {
    STATE.get_or_init(|| {
        let mut previous = ffi::PyObjectArenaAllocator { ctx: std::ptr::null_mut(), alloc: None, free: None };
        // SAFETY: fills the struct we own.
        unsafe { ffi::PyObject_GetArenaAllocator(&mut previous) };
        State { previous, from_heap: Mutex::new(HashSet::new()) }
    });
    let mut ours = ffi::PyObjectArenaAllocator { ctx: std::ptr::null_mut(), alloc: Some(alloc), free: Some(free) };
    // SAFETY: CPython copies the struct; the functions live as long as the
    // process, and STATE is set before they can be called.
    unsafe { ffi::PyObject_SetArenaAllocator(&mut ours) };
}

fn state() -> &'static State {
    STATE.get().expect("frames::install sets the state before installing the allocator")
}

extern "C" fn alloc(_ctx: *mut c_void, size: libc::size_t) -> *mut c_void {
    let st = state();
    if size < HEAP_BELOW {
        // SAFETY: plain malloc; a null result is CPython's to handle, as
        // its own allocator's would be.
        let ptr = unsafe { libc::malloc(size) };
        if !ptr.is_null() {
            st.from_heap.lock().unwrap_or_else(|e| e.into_inner()).insert(ptr as usize);
        }
        return ptr;
    }
    match st.previous.alloc {
        // SAFETY: CPython's allocator with its own context.
        Some(f) => f(st.previous.ctx, size),
        None => std::ptr::null_mut(),
    }
}

extern "C" fn free(_ctx: *mut c_void, ptr: *mut c_void, size: libc::size_t) {
    let st = state();
    let ours = st.from_heap.lock().unwrap_or_else(|e| e.into_inner()).remove(&(ptr as usize));
    if ours {
        // SAFETY: `ptr` came from our malloc above and is freed once (it
        // left the set).
        unsafe { libc::free(ptr) };
    } else if let Some(f) = st.previous.free {
        f(st.previous.ctx, ptr, size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::Python;

    #[test]
    fn small_blocks_come_from_the_heap_and_arenas_from_before() {
        Python::attach(|_py| {
            install();
            let mut now = ffi::PyObjectArenaAllocator { ctx: std::ptr::null_mut(), alloc: None, free: None };
            // SAFETY: fills the struct we own.
            unsafe { ffi::PyObject_GetArenaAllocator(&mut now) };
            let (a, f) = (now.alloc.unwrap(), now.free.unwrap());
            let chunk = a(now.ctx, 16 * 1024);
            assert!(!chunk.is_null());
            assert!(state().from_heap.lock().unwrap().contains(&(chunk as usize)));
            // Writable across its whole length.
            // SAFETY: a block of that size was just allocated.
            unsafe { std::ptr::write_bytes(chunk as *mut u8, 0xab, 16 * 1024) };
            f(now.ctx, chunk, 16 * 1024);
            assert!(!state().from_heap.lock().unwrap().contains(&(chunk as usize)));
            let arena = a(now.ctx, 1 << 20);
            assert!(!arena.is_null());
            assert!(!state().from_heap.lock().unwrap().contains(&(arena as usize)), "arenas stay with CPython's allocator");
            f(now.ctx, arena, 1 << 20);
            // Python still runs with it in place.
            Python::attach(|py| py.run(c"x = [str(i) for i in range(100000)]", None, None).unwrap());
        });
    }
}
