//! The README's settings list is generated from the settings table; this
//! test fails when they drift. Regenerate with
//! `RSGI_UPDATE_README=1 cargo test --test readme_settings`.

use std::path::Path;

const BEGIN: &str = "<!-- settings:begin -->\n";
const END: &str = "<!-- settings:end -->";

#[test]
fn readme_lists_every_setting() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(BEGIN).expect("README has no settings:begin marker") + BEGIN.len();
    let end = readme.find(END).expect("README has no settings:end marker");
    let table = _rsgi::config::settings::markdown_table();
    if std::env::var_os("RSGI_UPDATE_README").is_some() {
        let updated = format!("{}{}{}", &readme[..start], table, &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(&readme[start..end], table, "README settings list is stale: run RSGI_UPDATE_README=1 cargo test --test readme_settings");
}
