//! A real SMTP server for the tests that send mail: Python's aiosmtpd, run by
//! `tests/smtp_sink.py` from the venv of outside tools, keeping each message it takes as a
//! JSON line with what Python's email package decodes from it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::wait_for;

/// The SMTP sink as a child process, ended when dropped.
pub struct Sink {
    child: Child,
    out: PathBuf,
}

impl Sink {
    /// Listens on 127.0.0.1:`port`, keeping messages in `out`. `options`: the script's
    /// `--starttls CERT KEY`, `--login USER PASSWORD`.
    pub fn start(port: u16, out: &Path, options: &[&OsStr]) -> anyhow::Result<Self> {
        use std::io::BufRead;
        let python = crate::venv_python("aiosmtpd");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(["127.0.0.1", &port.to_string()])
            .arg(out)
            .args(options)
            .stdout(Stdio::piped())
            .spawn()?;
        let Some(stdout) = child.stdout.take() else {
            anyhow::bail!("the SMTP sink's stdout was not piped");
        };
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        anyhow::ensure!(
            line.trim() == "ready",
            "the SMTP sink did not start: {line:?}"
        );
        Ok(Self {
            child,
            out: out.to_owned(),
        })
    }

    /// Every message taken so far.
    pub fn messages(&self) -> anyhow::Result<Vec<Value>> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
    }

    /// The messages once there are at least `n`, waiting up to `timeout`.
    pub async fn wait(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Value>> {
        wait_for(
            &format!("{n} message(s) at the SMTP server"),
            timeout,
            || {
                let got = self.messages().map(|m| m.len());
                async move { Ok(got? >= n) }
            },
        )
        .await?;
        self.messages()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
