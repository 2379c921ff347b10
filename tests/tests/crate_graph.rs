//! The crate graph keeps its layers: the coordinator never uses the agent as its library (both
//! share IO through `modori-runtime`), the core does no IO, and nothing that ships contains the
//! demo. Read from `cargo metadata`, so a new dependency that breaks a layer fails here.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Crates that ship to sites and the centre.
const PRODUCTION: [&str; 4] = [
    "modori-shared",
    "modori-runtime",
    "modori-agent",
    "modori-coordinator",
];
/// Crates that do IO; `modori-shared` must reach none of them.
const IO_CRATES: [&str; 4] = ["tokio", "quinn", "rusqlite", "tokio-serial"];

/// Each package's direct dependencies by name, each with whether it is a dev-dependency only.
struct Graph(HashMap<String, Vec<(String, bool)>>);

impl Graph {
    fn read() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        // The host's crates only: other platforms' would need downloading, and do not ship here.
        let out = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--offline"])
            .args(["--filter-platform", &host_triple()])
            .current_dir(&root)
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
        let names: HashMap<&str, &str> = meta["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().expect("package id"),
                    p["name"].as_str().expect("package name"),
                )
            })
            .collect();
        let mut graph: HashMap<String, Vec<(String, bool)>> = HashMap::new();
        for node in meta["resolve"]["nodes"].as_array().expect("resolve nodes") {
            let name = names[node["id"].as_str().expect("node id")];
            let deps = graph.entry(name.to_owned()).or_default();
            for dep in node["deps"].as_array().expect("node deps") {
                let dev_only = dep["dep_kinds"]
                    .as_array()
                    .expect("dep_kinds")
                    .iter()
                    .all(|k| k["kind"].as_str() == Some("dev"));
                deps.push((
                    names[dep["pkg"].as_str().expect("dep pkg")].to_owned(),
                    dev_only,
                ));
            }
        }
        Self(graph)
    }

    /// Every crate `name` is built with: its dependencies and theirs, and, with `dev`, its own
    /// dev-dependencies (those of its dependencies are never built for it).
    fn reach(&self, name: &str, dev: bool) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = self.0[name]
            .iter()
            .filter(|(_, dev_only)| dev || !dev_only)
            .map(|(d, _)| d.clone())
            .collect();
        while let Some(next) = todo.pop() {
            if seen.insert(next.clone()) {
                todo.extend(
                    self.0
                        .get(&next)
                        .into_iter()
                        .flatten()
                        .filter(|(_, dev_only)| !dev_only)
                        .map(|(d, _)| d.clone()),
                );
            }
        }
        seen
    }
}

fn host_triple() -> String {
    let rustc = Path::new(env!("CARGO")).with_file_name("rustc");
    let rustc = if rustc.exists() {
        rustc
    } else {
        "rustc".into()
    };
    let out = Command::new(rustc).arg("-vV").output().expect("rustc runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

#[test]
fn the_coordinator_does_not_depend_on_the_agent() {
    let graph = Graph::read();
    let reached = graph.reach("modori-coordinator", true);
    // The graph was read: the coordinator's own layers are there.
    assert!(reached.contains("modori-runtime"), "{reached:?}");
    assert!(reached.contains("modori-shared"), "{reached:?}");
    assert!(!reached.contains("modori-agent"), "{reached:?}");
}

#[test]
fn the_core_reaches_no_io_crate() {
    let graph = Graph::read();
    let reached = graph.reach("modori-shared", false);
    assert!(reached.contains("serde"), "{reached:?}");
    for io in IO_CRATES {
        assert!(!reached.contains(io), "modori-shared depends on {io}");
    }
}

#[test]
fn no_production_crate_contains_the_demo() {
    let graph = Graph::read();
    assert!(graph.reach("modori-demo", false).contains("modori-agent"));
    for name in PRODUCTION {
        let reached = graph.reach(name, true);
        assert!(
            !reached.contains("modori-demo"),
            "{name} depends on modori-demo"
        );
    }
}
