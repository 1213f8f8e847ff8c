//! Load the WSGI app from its `APP_MODULE` argument as gunicorn's
//! `util.import_app` reads it: `module:callable`, `module` alone (meaning
//! `module:application`), or `module:factory(literal, key=literal)`.
//!
//! Runs in a worker right after fork (or in the master with `--preload`),
//! with the GIL held. Failures become one clear line for the operator.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// Why the app could not be loaded: one line for the operator, plus the
/// traceback for the debug log when Python raised.
#[derive(Debug)]
pub struct AppLoadError {
    pub message: String,
    pub traceback: Option<String>,
    /// The module itself failed to import (gunicorn: a worker boot error,
    /// exit 3) rather than the app object being missing or unusable
    /// (gunicorn's `AppImportError`, exit 4).
    pub import_failed: bool,
}

impl AppLoadError {
    fn plain(message: String) -> Self {
        AppLoadError { message, traceback: None, import_failed: false }
    }
}

/// Split `module:expr` (default expression `application`).
pub fn split_app_spec(spec: &str) -> (&str, &str) {
    match spec.split_once(':') {
        Some((m, o)) => (m, o),
        None => (spec, "application"),
    }
}

/// Render a Python exception as one line: `Type: message (file:line)`,
/// naming the innermost frame, plus the whole traceback.
pub fn describe_exception(py: Python<'_>, err: &PyErr) -> (String, String) {
    let value = err.value(py);
    let type_name = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    let msg = value.str().map(|s| s.to_string()).unwrap_or_default();
    let mut line = if msg.is_empty() { type_name } else { format!("{type_name}: {msg}") };
    let mut full = String::new();
    if let Ok(tb_mod) = py.import("traceback") {
        let tb = err.traceback(py);
        if let Ok(lines) = tb_mod.call_method1("format_exception", (value.get_type(), value, tb)) {
            if let Ok(list) = lines.cast::<PyList>() {
                for l in list.iter() {
                    full.push_str(&l.to_string());
                }
            }
        }
        if let Some(tb) = err.traceback(py) {
            if let Ok(frames) = tb_mod.call_method1("extract_tb", (tb,)) {
                if let Ok(last) = frames.get_item(-1) {
                    let file: String = last.getattr("filename").and_then(|f| f.extract()).unwrap_or_default();
                    let lineno: i64 = last.getattr("lineno").and_then(|f| f.extract()).unwrap_or_default();
                    if !file.is_empty() && !file.starts_with('<') {
                        line.push_str(&format!(" ({file}:{lineno})"));
                    }
                }
            }
        }
    }
    (line, full)
}

/// Load a PasteDeploy app (`config:/abs/path.ini[#name]`), as gunicorn's
/// `--paste` does.
fn load_paste_app(py: Python<'_>, uri: &str, defaults: &[(String, String)]) -> Result<Py<PyAny>, AppLoadError> {
    let run = || -> PyResult<Py<PyAny>> {
        let loadapp = py.import("paste.deploy")?.getattr("loadapp")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("relative_to", std::env::current_dir()?.display().to_string())?;
        let global = PyDict::new(py);
        for (k, v) in defaults {
            global.set_item(k, v)?;
        }
        kwargs.set_item("global_conf", global)?;
        Ok(loadapp.call((uri,), Some(&kwargs))?.unbind())
    };
    run().map_err(|err| {
        let (line, tb) = describe_exception(py, &err);
        AppLoadError { message: format!("Failed to load the PasteDeploy app {uri:?}: {line}"), traceback: Some(tb), import_failed: true }
    })
}

/// Import the module and resolve the callable (or load a PasteDeploy app
/// for `config:` specs). Called with the GIL held.
pub fn load_app_with<'py>(py: Python<'py>, spec: &str, paste_defaults: &[(String, String)]) -> Result<Py<PyAny>, AppLoadError> {
    if spec.starts_with("config:") {
        return load_paste_app(py, spec, paste_defaults);
    }
    load_app(py, spec)
}

/// The positional and keyword arguments of an app factory call.
type FactoryArgs<'py> = (Bound<'py, PyTuple>, Bound<'py, PyDict>);

/// Import the module and resolve the callable. Called with the GIL held.
pub fn load_app<'py>(py: Python<'py>, spec: &str) -> Result<Py<PyAny>, AppLoadError> {
    let (module, expr) = split_app_spec(spec);
    if module.is_empty() {
        return Err(AppLoadError::plain(format!("Failed to find application object {spec:?}: empty module name")));
    }
    let ast = py.import("ast").map_err(|e| AppLoadError::plain(e.to_string()))?;
    let mode = PyDict::new(py);
    mode.set_item("mode", "eval").map_err(|e| AppLoadError::plain(e.to_string()))?;
    let parsed = ast.call_method("parse", (expr,), Some(&mode));
    let body = match parsed.and_then(|tree| tree.getattr("body")) {
        Ok(b) => b,
        Err(_) => {
            return Err(AppLoadError::plain(format!(
                "Failed to parse {expr:?} as an attribute name or function call."
            )))
        }
    };
    let is = |name: &str| -> bool {
        ast.getattr(name).and_then(|cls| body.is_instance(&cls)).unwrap_or(false)
    };
    let (name, call): (String, Option<FactoryArgs<'_>>) = if is("Name") {
        (body.getattr("id").and_then(|i| i.extract()).unwrap_or_default(), None)
    } else if is("Call") {
        let func = body.getattr("func").map_err(|e| AppLoadError::plain(e.to_string()))?;
        let is_name = ast.getattr("Name").and_then(|c| func.is_instance(&c)).unwrap_or(false);
        if !is_name {
            return Err(AppLoadError::plain(format!("Function reference must be a simple name: {expr:?}")));
        }
        let literal = |node: Bound<'py, PyAny>| ast.call_method1("literal_eval", (node,));
        let bad_args = || AppLoadError::plain(format!("Failed to parse arguments as literal values: {expr:?}"));
        let mut args = Vec::new();
        for a in body.getattr("args").and_then(|a| a.try_iter().map(|i| i.collect::<Vec<_>>())).map_err(|_| bad_args())? {
            args.push(literal(a.map_err(|_| bad_args())?).map_err(|_| bad_args())?);
        }
        let kwargs = PyDict::new(py);
        for kw in body.getattr("keywords").and_then(|a| a.try_iter().map(|i| i.collect::<Vec<_>>())).map_err(|_| bad_args())? {
            let kw = kw.map_err(|_| bad_args())?;
            let key = kw.getattr("arg").map_err(|_| bad_args())?;
            let value = literal(kw.getattr("value").map_err(|_| bad_args())?).map_err(|_| bad_args())?;
            kwargs.set_item(key, value).map_err(|_| bad_args())?;
        }
        let args = PyTuple::new(py, args).map_err(|_| bad_args())?;
        (func.getattr("id").and_then(|i| i.extract()).unwrap_or_default(), Some((args, kwargs)))
    } else {
        return Err(AppLoadError::plain(format!("Failed to parse {expr:?} as an attribute name or function call.")));
    };

    let importlib = py.import("importlib").map_err(|e| AppLoadError::plain(e.to_string()))?;
    let module_obj = match importlib.call_method1("import_module", (module,)) {
        Ok(m) => m,
        Err(err) => {
            let (line, tb) = describe_exception(py, &err);
            let hint = if module.ends_with(".py") && std::path::Path::new(module).exists() {
                format!(", did you mean '{}:{}'?", module.trim_end_matches(".py"), expr)
            } else {
                String::new()
            };
            return Err(AppLoadError {
                message: format!("Failed to import module {module:?}: {line}{hint}"),
                traceback: Some(tb),
                import_failed: true,
            });
        }
    };
    let mut app = module_obj
        .getattr(name.as_str())
        .map_err(|_| AppLoadError::plain(format!("Failed to find attribute {name:?} in {module:?}.")))?;
    if let Some((args, kwargs)) = call {
        app = app.call(args, Some(&kwargs)).map_err(|err| {
            let (line, tb) = describe_exception(py, &err);
            AppLoadError {
                message: format!("Error while loading the app {expr:?}: {line}"),
                traceback: Some(tb),
                import_failed: false,
            }
        })?;
    }
    if app.is_none() {
        return Err(AppLoadError::plain(format!("Failed to find application object: {expr:?}")));
    }
    if !app.is_callable() {
        return Err(AppLoadError::plain("Application object must be callable.".into()));
    }
    Ok(app.unbind())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(split_app_spec("a.b:app"), ("a.b", "app"));
        assert_eq!(split_app_spec("a.b"), ("a.b", "application"));
        assert_eq!(split_app_spec("a:make(1, x='y')"), ("a", "make(1, x='y')"));
    }
}
