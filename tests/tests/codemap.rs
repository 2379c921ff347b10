//! ARCHITECTURE.md's code map names every source file of the workspace exactly once, under its
//! crate's heading, and names no file that does not exist: a map that drifts from the code is
//! worse than none.
//!
//! A name in backticks ending in `.rs` inside a crate's section (`### \`crate/\``) is resolved
//! against that crate's `src/` first, then the crate's own folder (`tests/…`, `benches/…`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The crates the map covers, each a folder of the workspace.
const CRATES: &[&str] = &[
    "shared",
    "runtime",
    "agent",
    "coordinator",
    "demo",
    "tests",
    "loadtest",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_owned()
}

/// The code map: from its heading to the next second-level heading.
fn code_map(architecture: &str) -> &str {
    let start = architecture
        .find("\n## Code map")
        .expect("ARCHITECTURE.md has a `## Code map` section");
    let rest = &architecture[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// Every backticked `….rs` name of one section.
fn rs_names(section: &str) -> Vec<&str> {
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| name.ends_with(".rs") && !name.contains(' '))
        .collect()
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_code_map_names_every_source_file_exactly_once() {
    let root = workspace();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let map = code_map(&text);
    let mut named: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut unknown = Vec::new();
    let mut sections = 0;
    for section in map.split("\n### ").skip(1) {
        let Some(krate) = section
            .strip_prefix('`')
            .and_then(|s| s.split_once("/`"))
            .map(|(name, _)| name)
        else {
            panic!(
                "a code-map section that names no crate: {:?}",
                section.lines().next()
            );
        };
        assert!(
            CRATES.contains(&krate),
            "the code map has a section for `{krate}/`, which is not a crate of the workspace"
        );
        sections += 1;
        for name in rs_names(section) {
            let found = [
                root.join(krate).join("src").join(name),
                root.join(krate).join(name),
            ]
            .into_iter()
            .find(|p| p.is_file());
            match found {
                Some(path) => *named.entry(path).or_default() += 1,
                None => unknown.push(format!("{krate}/: {name}")),
            }
        }
    }
    assert_eq!(sections, CRATES.len(), "one code-map section per crate");
    assert!(
        unknown.is_empty(),
        "the code map names files that do not exist: {unknown:#?}"
    );
    let mut files = Vec::new();
    for krate in CRATES {
        source_files(&root.join(krate), &mut files);
    }
    files.sort();
    let strip = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !named.contains_key(*f))
        .map(|f| strip(f))
        .collect();
    let twice: Vec<String> = named
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(f, n)| format!("{} ({n} times)", strip(f)))
        .collect();
    assert!(
        missing.is_empty(),
        "source files the code map does not name: {missing:#?}"
    );
    assert!(
        twice.is_empty(),
        "source files the code map names more than once: {twice:#?}"
    );
}
