//! `wsgi.errors`: a text stream that writes straight to the error log
//! (stderr or `--error-logfile`), as gunicorn's `WSGIErrorsWrapper` does.
//!
//! Called from executor threads with the GIL held; the write itself is one
//! `write(2)`.

use pyo3::prelude::*;

/// The error stream given to apps.
#[pyclass(module = "rsgi", name = "ErrorStream")]
pub struct ErrorStream;

#[pymethods]
impl ErrorStream {
    #[new]
    fn new() -> Self {
        ErrorStream
    }

    /// Write text (or bytes) to the error log; returns the length written.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        if let Ok(s) = data.extract::<&str>() {
            crate::log::write_raw(s.as_bytes());
            return Ok(s.chars().count());
        }
        let b: Vec<u8> = data.extract()?;
        crate::log::write_raw(&b);
        Ok(b.len())
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    fn flush(&self) {}

    fn writable(&self) -> bool {
        true
    }
}
