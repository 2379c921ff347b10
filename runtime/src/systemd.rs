//! systemd integration: readiness and the watchdog (`Type=notify`, `WatchdogSec=`).
//!
//! READY=1 is sent once the database is open, never waiting for the coordinator: a site works
//! offline. Watchdog pings prove more than a live process: each one follows a round trip
//! through the database thread, so a wedged writer stops the pings and systemd restarts the
//! service. Outside systemd (no `NOTIFY_SOCKET`) all of this does nothing.

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::sqlite::{Db, DbError};

/// Tells systemd the service is ready.
pub fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        warn!(error = %e, "could not notify systemd of readiness");
    }
}

/// Tells systemd the service is stopping (so a slow drain is not taken for a hang).
pub fn notify_stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// Pings the watchdog at half its interval, each ping after a round trip through `db`'s
/// thread. None when systemd asked for no watchdog. `probe_failpoint` names the crash point
/// inside the round trip, one per service, so a fault test wedges the database thread of the
/// service it means.
pub fn spawn_watchdog(
    db: Db,
    probe_failpoint: &'static str,
    mut shutdown: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled().filter(|d| !d.is_zero())?;
    let period = interval / 2;
    info!(
        period_ms = period.as_millis() as u64,
        probe_failpoint, "systemd watchdog enabled"
    );
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => break,
            }
            let probe = db.call(|c| {
                fail::fail_point!(probe_failpoint, |_| Ok(()));
                c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
                Ok::<_, DbError>(())
            });
            match tokio::time::timeout(period, probe).await {
                Ok(Ok(())) => {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
                Ok(Err(e)) => warn!(error = %e, "database probe failed; watchdog not pinged"),
                Err(_) => warn!("database thread did not answer in time; watchdog not pinged"),
            }
        }
    }))
}
