//! The SMTP server customers' mail is sent to in the tests: Python's aiosmtpd
//! (`tests/smtp_sink.py`, in the venv of outside tools) as a child process, writing each
//! message it takes, decoded by Python's email package, as a line of JSON.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The SMTP sink as a child process, ended when dropped.
pub struct Sink {
    child: Child,
    out: PathBuf,
}

impl Sink {
    /// Listens on `port`, writing to `out`. `options`: the script's `--starttls CERT KEY`,
    /// `--login USER PASSWORD`.
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
        read_messages(&self.out)
    }

    /// Every message taken, once there are at least `n`.
    pub async fn wait_messages(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Value>> {
        crate::wait_for(
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

/// The messages a sink wrote to `out`.
pub fn read_messages(out: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// A message's text part, with its line ends as Rust writes them.
pub fn text_of(m: &Value) -> String {
    m["text"].as_str().unwrap_or_default().replace("\r\n", "\n")
}
