//! The coordinator's use cases. Each is one function that checks what is asked, owns its
//! transaction, the commands it queues and the wake of their sites after the commit; the HTTP
//! API, the store counter and the demo call the same one, and only parse and render.
//!
//! Architecture invariant: no SQL here (statements live behind `store/`), and nothing of HTTP:
//! refusals are [`AppError`] values that name the request's field.

pub mod alert_notices;
pub mod batch;
pub mod counter;
pub mod error;
pub mod group_commit;
pub mod leases;
pub mod merchant_settings;
pub mod notify;
pub mod portal;
pub mod privacy;
pub mod quarantine;
pub mod register;
pub mod repair;
pub mod repair_answer;
pub mod route;
pub mod stock;
pub mod sweeps;
pub mod totes;
pub mod trade_in;
pub mod trade_in_offer;
pub mod trade_in_send;
pub mod webhooks;
pub mod withdraw;

pub use error::AppError;

use modori_shared::domain::RmaId;
use tracing::warn;

use crate::{store, CoordinatorError, Ctx};

/// Logs the failure of follow-up work after a commit (a later pass or reconnect redoes it).
pub(crate) fn logged<T>(what: &str, rma: &RmaId, result: Result<T, CoordinatorError>) {
    if let Err(e) = result {
        warn!(rma = %rma, error = %e, what, "follow-up after the commit failed; a later pass redoes it");
    }
}

/// Wakes every site's connection up to its stream's head (for a transaction that may have
/// queued commands for several sites).
pub(crate) async fn wake_all_streams(ctx: &Ctx) -> Result<(), CoordinatorError> {
    let heads = ctx.db.call(|c| store::command_heads(c)).await?;
    ctx.wake(heads.into_iter().collect());
    Ok(())
}
