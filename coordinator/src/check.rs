//! `modori-coordinator check`: what an operator runs before a start or when something is
//! wrong, on either backend. Each check passes, warns or fails with a reason, one line each
//! (as the agent's `doctor`); any failure makes the command exit non-zero. It changes nothing.

use modori_runtime::checks::check;
pub use modori_runtime::checks::{any_failed, render, Check, Verdict};

use crate::config::CoordinatorConfig;
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
        Ok(probe) => vec![reached(&backend, &probe), migrations(probe.schema)],
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
