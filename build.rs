//! Build script: records the pyo3 version this build links, read from
//! `Cargo.lock`, as `RSGI_PYO3_VERSION` for `rsgi --version`. No code is
//! generated; if the lock file cannot be read the version is "unknown".

use std::path::Path;

/// The `version` of the `[[package]]` named `name` in a Cargo.lock text.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut in_package = false;
    let mut matched = false;
    for line in lock.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[[package]]";
            matched = false;
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some(v) = line.strip_prefix("name = ") {
            matched = v.trim_matches('"') == name;
        } else if let Some(v) = line.strip_prefix("version = ") {
            if matched {
                return Some(v.trim_matches('"').to_owned());
            }
        }
    }
    None
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let lock = Path::new(&dir).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    println!("cargo:rerun-if-changed=build.rs");
    let version = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "pyo3"))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RSGI_PYO3_VERSION={version}");
}
