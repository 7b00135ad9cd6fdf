//! Generated documentation stays current: `docs/rules/*.md` and the README rule table come from
//! the rule metadata (`snippet-guard rules --write docs/rules`, `snippet-guard rules --markdown`).

use std::path::Path;

use snippet_guard::cli::rules::{markdown_page, markdown_table};
use snippet_guard::rules::ALL;

#[test]
fn rule_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules");
    let mut stale = Vec::new();
    for r in ALL {
        let path = dir.join(format!("{}.md", r.id));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != markdown_page(r) {
            stale.push(path.display().to_string());
        }
    }
    let pages = std::fs::read_dir(&dir).map_or(0, Iterator::count);
    assert_eq!(
        pages,
        ALL.len(),
        "docs/rules has pages for rules that do not exist"
    );
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; run `cargo run -- rules --write docs/rules`"
    );
}

#[test]
fn readme_rule_table_is_current() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- rules:start -->\n")
        .expect("rules:start marker")
        + 21;
    let end = readme.find("<!-- rules:end -->").expect("rules:end marker");
    assert_eq!(
        &readme[start..end],
        markdown_table(),
        "README rule table is stale; paste `cargo run -- rules --markdown` between the markers"
    );
}
