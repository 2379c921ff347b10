//! Outside judges of printed labels: ZPL rendered by `zplkit` (PyPI, in the test venv) and
//! images decoded by `zbarimg` (Debian's `zbar-tools`). Nothing here reads our own encoder.
//!
//! `scripts/test.sh` installs both and sets `MODORI_REQUIRE_LABEL_TOOLS=1`, so there a missing
//! tool fails the label tests; a plain `cargo test` without them skips, saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

const ZBARIMG: &str = "zbarimg";

/// Renders each `(zpl, png, dpi)` job with zplkit; fails on a render error or warning.
const RENDER_PY: &str = r#"
import sys
from pathlib import Path
import zplkit
for job in sys.argv[1:]:
    zpl, png, dpi = job.rsplit("|", 2)
    doc = zplkit.render(Path(zpl).read_bytes(), zplkit.Options(profile="zd621", dpi=int(dpi)))
    if doc.warnings:
        sys.exit(f"{zpl}: renderer warnings: {doc.warnings}")
    if len(doc.labels) != 1:
        sys.exit(f"{zpl}: {len(doc.labels)} labels, expected 1")
    Path(png).write_bytes(doc.labels[0].png())
"#;

/// The renderer and the decoder, found.
pub struct LabelTools {
    python: PathBuf,
}

impl LabelTools {
    /// `None` when a tool is missing and the run does not require them.
    pub fn find() -> anyhow::Result<Option<Self>> {
        let python = crate::venv_dir().join("bin").join("python");
        let has_zplkit = Command::new(&python)
            .args(["-c", "import zplkit"])
            .output()
            .is_ok_and(|o| o.status.success());
        let has_zbar = Command::new(ZBARIMG)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if has_zplkit && has_zbar {
            return Ok(Some(Self { python }));
        }
        let missing = format!(
            "zplkit in {} found: {has_zplkit}, {ZBARIMG} found: {has_zbar}",
            crate::venv_dir().display()
        );
        if std::env::var_os("MODORI_REQUIRE_LABEL_TOOLS").is_some() {
            bail!("{missing}, and MODORI_REQUIRE_LABEL_TOOLS is set");
        }
        eprintln!(
            "SKIPPED: {missing}; ./scripts/test.sh installs zplkit (PyPI) and zbar-tools (Debian)"
        );
        Ok(None)
    }

    /// Renders every `(zpl file, dpi)` to a PNG next to it; returns the PNG paths.
    pub fn render(&self, jobs: &[(PathBuf, u32)]) -> anyhow::Result<Vec<PathBuf>> {
        let pngs: Vec<PathBuf> = jobs.iter().map(|(z, _)| z.with_extension("png")).collect();
        for chunk in jobs.iter().zip(&pngs).collect::<Vec<_>>().chunks(64) {
            let args: Vec<String> = chunk
                .iter()
                .map(|((zpl, dpi), png)| format!("{}|{}|{dpi}", zpl.display(), png.display()))
                .collect();
            let out = Command::new(&self.python)
                .arg("-c")
                .arg(RENDER_PY)
                .args(&args)
                .output()
                .context("running zplkit")?;
            if !out.status.success() {
                bail!("zplkit: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        Ok(pngs)
    }

    /// Every barcode `zbarimg` finds in `png` (Code 128 and QR only), as text.
    pub fn decode(&self, png: &Path) -> anyhow::Result<Vec<String>> {
        decode(png)
    }
}

/// Every Code 128 and QR code `zbarimg` finds in `png`, as text; none is not an error.
pub fn decode(png: &Path) -> anyhow::Result<Vec<String>> {
    let out = Command::new(ZBARIMG)
        .args([
            "--quiet",
            "--raw",
            "-Sdisable",
            "-Scode128.enable",
            "-Sqrcode.enable",
        ])
        .arg(png)
        .output()
        .context("running zbarimg")?;
    // zbarimg exits 4 when it found no symbol: a result, not a failure of the tool.
    if !out.status.success() && out.status.code() != Some(4) {
        bail!(
            "zbarimg {}: {}",
            png.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)
        .context("zbarimg output")?
        .lines()
        .map(str::to_owned)
        .collect())
}
