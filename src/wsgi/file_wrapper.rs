//! `wsgi.file_wrapper`: wraps a file-like object so the server can send it
//! with sendfile(2) when it has a real file descriptor, and iterate it in
//! `blksize` blocks otherwise (PEP 3333 "Optional Platform-Specific File
//! Handling").
//!
//! Created and iterated on executor threads with the GIL held.

use pyo3::prelude::*;

/// The object `wsgi.file_wrapper(filelike, blksize=8192)` returns.
#[pyclass(module = "rsgi", name = "FileWrapper")]
pub struct FileWrapper {
    /// The wrapped file-like object.
    #[pyo3(get)]
    pub filelike: Py<PyAny>,
    /// Block size for iteration.
    #[pyo3(get)]
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> Self {
        FileWrapper { filelike, blksize: blksize.max(1) }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let data = self.filelike.bind(py).call_method1("read", (self.blksize,))?;
        Ok(if data.is_truthy()? { Some(data.unbind()) } else { None })
    }

    /// Close the wrapped file, if it can be closed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr("close")? {
            f.call_method0("close")?;
        }
        Ok(())
    }
}

impl FileWrapper {
    /// The wrapped file's descriptor and current position, when it has a
    /// real one (otherwise the response is sent by iteration).
    pub fn fd_and_offset(&self, py: Python<'_>) -> Option<(i32, u64)> {
        let f = self.filelike.bind(py);
        let fd: i32 = f.call_method0("fileno").ok()?.extract().ok()?;
        // SAFETY: lseek on a descriptor the app owns, without moving it.
        let pos = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
        if pos < 0 {
            return None;
        }
        Some((fd, pos as u64))
    }
}
