//! `modori-coordinator check`: what an operator runs before a start or when something is
//! wrong, on either backend. Each check passes, warns or fails with a reason, one line each
//! (as the agent's `doctor`); any failure makes the command exit non-zero. It changes nothing.

use modori_runtime::checks::check;
pub use modori_runtime::checks::{any_failed, render, Check, Verdict};

use std::collections::BTreeMap;

use crate::config::CoordinatorConfig;
use crate::store::leases::LeaseRow;
use crate::store::pg::{Backend, PgError};
use crate::store::probe::{self, Probe, ProbeError};
use crate::store::SchemaStatus;

/// Runs every check of `config`'s database. Blocking (the PostgreSQL client is sync): call it
/// off the async runtime.
pub fn run(config: &CoordinatorConfig) -> Vec<Check> {
    let (backend, probed) = match config.storage.backend() {
        Ok(Backend::Sqlite) => {
            let path = config.db_path();
            (format!("SQLite {}", path.display()), probe::sqlite(&path))
        }
        Ok(Backend::Postgres(target)) => (
            format!("PostgreSQL {}", target.describe()),
            probe::postgres(&target, config.storage.ca_file.as_deref()),
        ),
        // A loaded config has a valid URL; kept for a config built in code.
        Err(e) => {
            return vec![check(
                "database",
                Verdict::Fail,
                format!("storage.url: {e}"),
            )]
        }
    };
    match probed {
        Ok(probe) => vec![
            reached(&backend, &probe),
            migrations(probe.schema),
            coordinators(&probe.leases, modori_runtime::clock::now_ms()),
        ],
        Err(ProbeError::Missing(path)) => vec![
            check(
                "database",
                Verdict::Warn,
                format!(
                    "{backend}: {} does not exist yet (created at the first start)",
                    path.display()
                ),
            ),
            migrations(SchemaStatus {
                applied: 0,
                build: crate::store::MIGRATIONS.len(),
            }),
        ],
        Err(ProbeError::Pg(e @ PgError::TextOrder { .. })) => {
            vec![check("database", Verdict::Fail, e.to_string())]
        }
        Err(e) => vec![check(
            "database",
            Verdict::Fail,
            format!("unreachable: {}", error_chain(&e)),
        )],
    }
}

fn reached(backend: &str, probe: &Probe) -> Check {
    check(
        "database",
        Verdict::Pass,
        format!(
            "{backend}: reachable in {} ms",
            probe.elapsed.as_millis().max(1)
        ),
    )
}

fn migrations(schema: SchemaStatus) -> Check {
    let SchemaStatus { applied, build } = schema;
    if applied == build {
        check(
            "migrations",
            Verdict::Pass,
            format!("current ({applied} of {build})"),
        )
    } else if applied < build {
        check(
            "migrations",
            Verdict::Warn,
            format!(
                "{} to apply (the database has {applied} of this build's {build}; the next \
                 start applies them)",
                plural(build - applied, "migration")
            ),
        )
    } else {
        check(
            "migrations",
            Verdict::Fail,
            format!(
                "database is newer than this build ({applied} migrations, this build knows \
                 {build}): refused; run the build that migrated it"
            ),
        )
    }
}

/// The coordinators seen in the leases on background work: those holding one now, and any
/// whose lease ran out without another taking it (stopped without giving it up: killed, or
/// cut off from the database), which ops should know of.
fn coordinators(leases: &[LeaseRow], now_ms: i64) -> Check {
    let mut running: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut lapsed = Vec::new();
    for l in leases {
        if l.expires_ms > now_ms {
            running.entry(&l.holder).or_default().push(&l.name);
        } else {
            lapsed.push(format!(
                "{} by {} ran out {} s ago",
                l.name,
                l.holder,
                (now_ms - l.expires_ms) / 1000
            ));
        }
    }
    let seen: Vec<String> = running
        .iter()
        .map(|(holder, names)| format!("{holder} ({})", names.join(", ")))
        .collect();
    let seen = match seen.len() {
        0 => "none running now (a coordinator gives its leases up when it stops)".to_owned(),
        n => format!("{} running: {}", plural(n, "coordinator"), seen.join("; ")),
    };
    if lapsed.is_empty() {
        check("coordinators", Verdict::Pass, seen)
    } else {
        check(
            "coordinators",
            Verdict::Warn,
            format!(
                "{seen}; stopped without giving its work up (killed, or cut off from the \
                 database; the next coordinator to run takes it over): {}",
                lapsed.join("; ")
            ),
        )
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// An error and its causes on one line, each said once.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = s.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(name: &str, holder: &str, expires_ms: i64) -> LeaseRow {
        LeaseRow {
            name: name.into(),
            holder: holder.into(),
            taken_ms: 0,
            expires_ms,
        }
    }

    #[test]
    fn coordinators_are_named_by_their_leases_and_a_lapsed_one_warns() {
        let none = coordinators(&[], 1_000);
        assert_eq!(none.verdict, Verdict::Pass);
        assert!(
            none.detail.starts_with("none running now"),
            "{}",
            none.detail
        );
        let two = coordinators(
            &[
                lease("sweeps", "10.0.0.1:4433/aa", 50_000),
                lease("webhooks", "10.0.0.1:4433/aa", 50_000),
                lease("customer_messages", "10.0.0.2:4433/bb", 50_000),
            ],
            1_000,
        );
        assert_eq!(two.verdict, Verdict::Pass);
        assert_eq!(
            two.detail,
            "2 coordinators running: 10.0.0.1:4433/aa (sweeps, webhooks); 10.0.0.2:4433/bb (customer_messages)"
        );
        let lapsed = coordinators(&[lease("sweeps", "10.0.0.1:4433/aa", 1_000)], 61_000);
        assert_eq!(lapsed.verdict, Verdict::Warn);
        assert!(
            lapsed
                .detail
                .contains("sweeps by 10.0.0.1:4433/aa ran out 60 s ago"),
            "{}",
            lapsed.detail
        );
    }

    #[test]
    fn migrations_behind_warn_and_ahead_fail() {
        let at = |applied| migrations(SchemaStatus { applied, build: 5 });
        assert_eq!(at(5).verdict, Verdict::Pass);
        let behind = at(4);
        assert_eq!(behind.verdict, Verdict::Warn);
        assert!(
            behind.detail.starts_with("1 migration to apply"),
            "{}",
            behind.detail
        );
        let ahead = at(6);
        assert_eq!(ahead.verdict, Verdict::Fail);
        assert!(at(2).detail.starts_with("3 migrations to apply"));
        assert!(ahead
            .detail
            .starts_with("database is newer than this build"));
    }
}
