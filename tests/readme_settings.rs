//! The settings list in docs/settings.md is generated from the settings
//! table; this test fails when they drift. Regenerate with
//! `RSGI_UPDATE_README=1 cargo test --test readme_settings`.

use std::path::Path;

const BEGIN: &str = "<!-- settings:begin -->\n";
const END: &str = "<!-- settings:end -->";

#[test]
fn readme_lists_every_setting() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join("settings.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc.find(BEGIN).expect("docs/settings.md has no settings:begin marker") + BEGIN.len();
    let end = doc.find(END).expect("docs/settings.md has no settings:end marker");
    let table = _rsgi::config::settings::markdown_table();
    if std::env::var_os("RSGI_UPDATE_README").is_some() {
        let updated = format!("{}{}{}", &doc[..start], table, &doc[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(&doc[start..end], table, "docs/settings.md settings list is stale: run RSGI_UPDATE_README=1 cargo test --test readme_settings");
}
