//! Memory and CPU of a process, read from `/proc/<pid>/status` and `/proc/<pid>/stat`.

use std::path::PathBuf;

use thiserror::Error;

/// Linux reports process times in USER_HZ ticks. USER_HZ is part of the kernel's ABI and is 100
/// on every architecture Rust targets on Linux, whatever the kernel's own tick rate.
pub const USER_HZ: f64 = 100.0;

#[derive(Debug, Error)]
pub enum ProcError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no readable {field}")]
    Parse { path: PathBuf, field: &'static str },
}

fn read(path: PathBuf) -> Result<(PathBuf, String), ProcError> {
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((path, text)),
        Err(source) => Err(ProcError::Read { path, source }),
    }
}

/// Resident set size in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Result<u64, ProcError> {
    let (path, text) = read(PathBuf::from(format!("/proc/{pid}/status")))?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or(ProcError::Parse {
            path,
            field: "VmRSS",
        })
}

/// CPU time used so far (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64, ProcError> {
    cpu_seconds_at(&PathBuf::from(format!("/proc/{pid}/stat")))
}

/// CPU time used so far by the process or thread whose `stat` file is `stat`.
pub fn cpu_seconds_at(stat: &std::path::Path) -> Result<f64, ProcError> {
    let (path, text) = read(stat.to_owned())?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    // utime and stime are fields 14 and 15, so the 12th and 13th after the name.
    let mut after_name = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace())
        .ok_or(ProcError::Parse {
            path: path.clone(),
            field: "command name",
        })?;
    let mut tick = |field| {
        after_name
            .nth(field)
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or(ProcError::Parse {
                path: path.clone(),
                field: "utime/stime",
            })
    };
    let utime = tick(11)?;
    let stime = tick(0)?;
    Ok((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).unwrap() > 0);
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(30) {
            std::hint::black_box(spin.elapsed());
        }
        assert!(cpu_seconds(me).unwrap() > 0.0);
        assert!(rss_bytes(u32::MAX).is_err());
    }
}
