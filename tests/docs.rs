//! What the docs say about the code, checked against it.

use std::collections::BTreeSet;
use std::path::Path;

/// Every `.rs` file under `dir`, relative to `root`.
fn sources(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(root, &path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under the root");
            found.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn contributings_file_map_names_every_source_file_and_no_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("CONTRIBUTING.md")).expect("CONTRIBUTING.md");
    let (_, after) = text
        .split_once("\nsrc/\n")
        .expect("the file map opens with `src/`");
    let map = after.split("```").next().expect("the map's block");
    let listed: BTreeSet<String> = map
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.ends_with(".rs"))
        .map(str::to_string)
        .collect();
    let mut present = BTreeSet::new();
    sources(&root.join("src"), &root.join("src"), &mut present);
    let missing: Vec<_> = present.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&present).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "not in CONTRIBUTING.md's file map: {missing:?}; listed but not in src/: {gone:?}"
    );
}
