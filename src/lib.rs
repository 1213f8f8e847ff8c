pub mod cli;
pub mod config;
pub mod http;
use pyo3::prelude::*;
#[pyfunction]
fn main(argv: Vec<String>) -> i32 { argv.len() as i32 }
#[pymodule]
fn _rsgi(m: &Bound<'_, PyModule>) -> PyResult<()> { m.add_function(wrap_pyfunction!(main, m)?)?; Ok(()) }
