//! Driving a running agent's stations from a test: scan through a pseudo-terminal scanner and
//! wait for the station to answer, and read the site database beside the running agent.

use std::path::Path;
use std::time::Duration;

use modori_agent::config::AgentConfig;
use modori_agent::AgentHandle;
use modori_demo::pty::SimScanner;

use crate::wait_for;

/// How long a station may take to answer one scan.
pub const SCAN_TIMEOUT: Duration = Duration::from_secs(30);

/// Scans `line` at station number `station` and waits until it has handled it; returns its
/// answer as `good: …` or `bad: …`.
pub async fn scan(
    agent: &AgentHandle,
    scanner: &SimScanner,
    station: usize,
    line: &str,
) -> anyhow::Result<String> {
    let before = agent.status().await?.stations[station].n_scans;
    scanner.scan(line).await?;
    wait_for(
        &format!("station {station} to handle {line}"),
        SCAN_TIMEOUT,
        || {
            let agent = agent.clone();
            async move { Ok(agent.status().await?.stations[station].n_scans > before) }
        },
    )
    .await?;
    let s = agent.status().await?.stations[station].clone();
    Ok(format!(
        "{}: {}",
        s.last_signal.unwrap_or_default(),
        s.last_message.unwrap_or_default()
    ))
}

/// [`scan`], failing unless the station gave a good signal.
pub async fn scan_ok(
    agent: &AgentHandle,
    scanner: &SimScanner,
    station: usize,
    line: &str,
) -> anyhow::Result<()> {
    let answer = scan(agent, scanner, station, line).await?;
    anyhow::ensure!(answer.starts_with("good"), "{line}: {answer}");
    Ok(())
}

/// One value (a count, a state) read from the site database while the agent runs.
pub fn agent_query<T: rusqlite::types::FromSql>(
    config: &AgentConfig,
    sql: &str,
) -> anyhow::Result<T> {
    let conn = open_read_only(&config.db_path())?;
    Ok(conn.query_row(sql, [], |r| r.get(0))?)
}

/// [`agent_query`] for a count.
pub fn agent_count(config: &AgentConfig, sql: &str) -> anyhow::Result<i64> {
    agent_query(config, sql)
}

fn open_read_only(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(SCAN_TIMEOUT)?;
    Ok(conn)
}
