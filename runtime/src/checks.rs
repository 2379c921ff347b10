//! The table both services' self-checks print (`modori-agent doctor`, `modori-coordinator
//! check`): one line per check, passed, warned or failed with its reason, names aligned.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

pub fn check(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        name,
        verdict,
        detail: detail.into(),
    }
}

/// One line per check, names aligned.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    checks
        .iter()
        .map(|c| format!("{}  {:<width$}  {}", c.verdict, c.name, c.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the command should exit non-zero.
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.verdict == Verdict::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_aligned_and_a_failure_is_seen() {
        let checks = [
            check("database", Verdict::Pass, "reachable"),
            check("clock", Verdict::Fail, "off"),
        ];
        assert_eq!(
            render(&checks),
            "PASS  database  reachable\nFAIL  clock     off"
        );
        assert!(any_failed(&checks));
        assert!(!any_failed(&checks[..1]));
    }
}
