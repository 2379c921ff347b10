//! Which binaries the fleet runs, and how big the agent is once stripped.
//!
//! By default the real `modori-agent` and `modori-coordinator` beside `modori-load` in the
//! target folder. Started by cargo (`cargo run`), the harness first builds them in its own
//! profile, so a run never measures a stale binary left there by an older build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde::Serialize;

/// The agent's binary name, and the name `modori-load` answers to as the agent.
pub const AGENT_NAME: &str = "modori-agent";
/// The coordinator's binary name, and the name `modori-load` answers to as the coordinator.
pub const COORDINATOR_NAME: &str = "modori-coordinator";

/// Where the fleet's binaries came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `--agent-bin` and `--coordinator-bin`.
    Given,
    /// Built by this run with cargo, beside `modori-load`.
    Built,
    /// Found beside `modori-load`.
    Beside,
    /// `modori-load` itself, called by the services' names (`--self-hosted`).
    SelfHosted,
}

#[derive(Clone, Debug, Serialize)]
pub struct Binaries {
    pub agent: PathBuf,
    pub coordinator: PathBuf,
    pub source: Source,
    /// Holds the symlinks of a self-hosted fleet for as long as it runs.
    #[serde(skip)]
    _links: Option<Arc<tempfile::TempDir>>,
}

impl Binaries {
    /// The paths as `ProcFleet` takes them. It was made for `env!` paths, which live for the
    /// whole program; these two strings do too, so leaking them once per run costs nothing.
    pub fn for_proc_fleet(&self) -> modori_tests::procs::Binaries {
        let leak = |p: &Path| &*Box::leak(p.to_string_lossy().into_owned().into_boxed_str());
        modori_tests::procs::Binaries {
            agent: leak(&self.agent),
            coordinator: leak(&self.coordinator),
        }
    }
}

/// Finds (or builds) the binaries the fleet runs.
pub fn resolve(
    agent: Option<PathBuf>,
    coordinator: Option<PathBuf>,
    self_hosted: bool,
) -> anyhow::Result<Binaries> {
    let exe = std::env::current_exe().context("locating modori-load")?;
    if self_hosted {
        return self_hosted_links(&exe);
    }
    let beside = exe
        .parent()
        .context("modori-load has no folder")?
        .to_owned();
    let source = match (&agent, &coordinator) {
        (Some(_), Some(_)) => Source::Given,
        _ if std::env::var_os("CARGO").is_some() => {
            build_beside(&beside)?;
            Source::Built
        }
        _ => Source::Beside,
    };
    let agent = agent.unwrap_or_else(|| beside.join(AGENT_NAME));
    let coordinator = coordinator.unwrap_or_else(|| beside.join(COORDINATOR_NAME));
    for path in [&agent, &coordinator] {
        if !path.is_file() {
            bail!(
                "{} not found: build it (cargo build --profile dist -p modori-agent -p modori-coordinator), \
                 pass --agent-bin/--coordinator-bin, or run with --self-hosted",
                path.display()
            );
        }
    }
    Ok(Binaries {
        agent,
        coordinator,
        source,
        _links: None,
    })
}

/// Symlinks named like the services, pointing at this executable.
fn self_hosted_links(exe: &Path) -> anyhow::Result<Binaries> {
    let dir = tempfile::tempdir().context("folder for the self-hosted binaries")?;
    let agent = dir.path().join(AGENT_NAME);
    let coordinator = dir.path().join(COORDINATOR_NAME);
    for link in [&agent, &coordinator] {
        std::os::unix::fs::symlink(exe, link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(Binaries {
        agent,
        coordinator,
        source: Source::SelfHosted,
        _links: Some(Arc::new(dir)),
    })
}

/// `cargo build -p modori-agent -p modori-coordinator` into the folder `modori-load` runs
/// from (`<target>/<profile>`), in the same profile.
fn build_beside(beside: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").context("CARGO is not set")?;
    let profile = match beside.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => bail!("cannot tell the cargo profile of {}", beside.display()),
    };
    let target_dir = beside
        .parent()
        .with_context(|| format!("{} has no target folder", beside.display()))?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("Cargo.toml");
    tracing::info!(profile, target_dir = %target_dir.display(), "building modori-agent and modori-coordinator");
    let status = Command::new(cargo)
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "--profile",
            profile,
            "-p",
            "modori-agent",
            "-p",
            "modori-coordinator",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of modori-agent and modori-coordinator failed ({status})");
    }
    Ok(())
}

/// Size of a binary as built and with its symbols stripped.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BinarySize {
    pub bytes: u64,
    /// `None` when the `strip` command is not installed.
    pub stripped_bytes: Option<u64>,
}

/// Measures `binary`, stripping a copy in `scratch` (the original is left as it is).
pub fn size(binary: &Path, scratch: &Path) -> anyhow::Result<BinarySize> {
    let bytes = std::fs::metadata(binary)
        .with_context(|| format!("reading {}", binary.display()))?
        .len();
    let copy = scratch.join("stripped-binary");
    std::fs::copy(binary, &copy).with_context(|| format!("copying {}", binary.display()))?;
    let stripped_bytes = match Command::new("strip").arg("--strip-all").arg(&copy).status() {
        Ok(status) if status.success() => Some(std::fs::metadata(&copy)?.len()),
        Ok(status) => bail!("strip {} failed ({status})", copy.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).context("running strip"),
    };
    std::fs::remove_file(&copy).ok();
    Ok(BinarySize {
        bytes,
        stripped_bytes,
    })
}
