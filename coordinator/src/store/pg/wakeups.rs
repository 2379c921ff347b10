//! Wake-ups across coordinators sharing a PostgreSQL database (LISTEN/NOTIFY). A coordinator
//! wakes its own workers when it commits work for them; one sharing the database learns of that
//! work only through the database, so the transaction that queues it also sends a wake-up,
//! delivered to every coordinator listening when (and only if) the transaction commits.
//!
//! A notification sent while a listener is disconnected is lost, so a listener that connects
//! again wakes everything once ([`Wake::All`]): the workers then look at the database
//! themselves, which is what they do on their own tick anyway. Wake-ups only make work start
//! sooner; nothing depends on one arriving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::PgTarget;
use crate::store::sql::{Dialect, Sql, SqlError};

/// The channel every wake-up goes on.
pub const WAKE_CHANNEL: &str = "modori_wake";
/// How long the listener waits for a notification before it checks the connection and
/// whether it was asked to stop: the longest a stop waits for it.
pub const LISTEN_POLL: Duration = Duration::from_millis(500);
/// The listener's first wait before it connects again, doubled per failure up to
/// [`LISTEN_RETRY_MAX`].
pub const LISTEN_RETRY_MIN: Duration = Duration::from_millis(200);
pub const LISTEN_RETRY_MAX: Duration = Duration::from_secs(5);

/// What a wake-up is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wake {
    /// New timeline events: webhook deliveries are due.
    Webhooks,
    /// New timeline events: customer messages may be due.
    CustomerMessages,
    /// Commands were queued for this site: the coordinator holding its link sends them.
    Commands(String),
    /// Anything may be due: after the listener was away, or a wake-up this build does not
    /// know (a newer replica's, during a rolling upgrade).
    All,
}

impl Wake {
    pub fn payload(&self) -> String {
        match self {
            Self::Webhooks => "webhooks".into(),
            Self::CustomerMessages => "customer_messages".into(),
            Self::Commands(site) => format!("commands:{site}"),
            Self::All => "all".into(),
        }
    }

    pub fn parse(payload: &str) -> Self {
        match payload {
            "webhooks" => Self::Webhooks,
            "customer_messages" => Self::CustomerMessages,
            p => match p.strip_prefix("commands:") {
                Some(site) if !site.is_empty() => Self::Commands(site.to_owned()),
                _ => Self::All,
            },
        }
    }
}

/// Sends `wake` to every coordinator listening on the database, when the transaction `conn`
/// is in commits (at once outside one). On SQLite, where one coordinator serves the file,
/// nothing: the caller wakes its own workers.
pub fn send(conn: &mut dyn Sql, wake: &Wake) -> Result<(), SqlError> {
    if conn.dialect() == Dialect::Postgres {
        // `execute`: the function returns `void`, which no row reader takes.
        conn.execute(
            "SELECT pg_notify(CAST(?1 AS TEXT), CAST(?2 AS TEXT))",
            &[&WAKE_CHANNEL, &wake.payload()],
        )?;
    }
    Ok(())
}

/// A thread listening for wake-ups on a connection of its own, reconnecting when it breaks.
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    /// Starts listening; `on_wake` runs on the listener's thread for each wake-up.
    pub fn start(
        target: PgTarget,
        ca_file: Option<&Path>,
        on_wake: impl Fn(Wake) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let ca_file: Option<PathBuf> = ca_file.map(Path::to_owned);
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pg-wakeups".into())
            .spawn(move || listen(&target, ca_file.as_deref(), &stopping, &on_wake))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops listening and waits for the thread (at most about [`LISTEN_POLL`], or
    /// [`LISTEN_RETRY_MAX`] while it waits to connect again).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn listen(target: &PgTarget, ca_file: Option<&Path>, stop: &AtomicBool, on_wake: &dyn Fn(Wake)) {
    let mut retry = LISTEN_RETRY_MIN;
    let mut connected_before = false;
    while !stop.load(Ordering::Relaxed) {
        let mut client = match target.connect(ca_file).and_then(|mut c| {
            c.batch_execute(&format!("LISTEN {WAKE_CHANNEL}"))
                .map_err(|e| target.query_error(e))
                .map(|()| c)
        }) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = retry.as_millis() as u64, "listening for wake-ups failed");
                sleep_unless_stopped(retry, stop);
                retry = (retry * 2).min(LISTEN_RETRY_MAX);
                continue;
            }
        };
        retry = LISTEN_RETRY_MIN;
        if connected_before {
            // Whatever was sent while this listener was away is lost.
            on_wake(Wake::All);
        }
        connected_before = true;
        tracing::info!(target = %target.describe(), "listening for wake-ups");
        while !stop.load(Ordering::Relaxed) {
            let next = client.notifications().timeout_iter(LISTEN_POLL).next();
            match next {
                Ok(Some(note)) => on_wake(Wake::parse(note.payload())),
                // Nothing within the poll, or the server went away: ask it something.
                Ok(None) => {
                    if client.is_closed() || client.simple_query("").is_err() {
                        tracing::warn!("the wake-up connection broke");
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the wake-up connection broke");
                    break;
                }
            }
        }
    }
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < total && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        slept += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_back_and_unknown_ones_wake_everything() {
        for wake in [
            Wake::Webhooks,
            Wake::CustomerMessages,
            Wake::Commands("osaka".into()),
            Wake::All,
        ] {
            assert_eq!(Wake::parse(&wake.payload()), wake);
        }
        assert_eq!(Wake::parse("commands:"), Wake::All);
        assert_eq!(Wake::parse("refunds"), Wake::All);
    }
}
