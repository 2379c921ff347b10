//! A simulated station crew for the demo and the tests: it receives what is expected, grades
//! what is received and disposes what is graded, through the same calls a real station makes.

use modori_shared::domain::{Disposition, Grade, UnitState};
use rand::Rng;

use crate::{work, AgentError, AgentHandle};

/// Units the crew handles per step at most, per stage.
pub const UNITS_PER_STEP_MAX: usize = 20;

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    pub n_received: usize,
    pub n_graded: usize,
    pub n_disposed: usize,
}

/// One round of work. `rng` decides grades and dispositions.
pub async fn step(
    agent: &AgentHandle,
    rng: &mut impl Rng,
    operator: &str,
) -> Result<StepReport, AgentError> {
    let mut report = StepReport::default();
    let expected = agent
        .db()
        .call(|c| work::pending_expected_returns(c, UNITS_PER_STEP_MAX))
        .await?;
    for parcel in expected {
        for sku in parcel.skus {
            agent
                .receive_unit(Some(parcel.rma.clone()), sku, operator)
                .await?;
            report.n_received += 1;
        }
    }
    let received = agent
        .db()
        .call(|c| work::units_in_state(c, "received", UNITS_PER_STEP_MAX))
        .await?;
    for (lpn, _) in received {
        let grade = [
            Grade::A,
            Grade::A,
            Grade::B,
            Grade::B,
            Grade::C,
            Grade::D,
            Grade::X,
        ][rng.random_range(0..7)];
        agent.grade_unit(lpn, grade, operator).await?;
        report.n_graded += 1;
    }
    let graded = agent
        .db()
        .call(|c| work::units_in_state(c, "graded", UNITS_PER_STEP_MAX))
        .await?;
    for (lpn, state) in graded {
        let disposition = match state {
            UnitState::Graded(Grade::A) => Disposition::Restock,
            UnitState::Graded(Grade::B) => Disposition::Resale,
            UnitState::Graded(Grade::C) => Disposition::Refurbish,
            UnitState::Graded(Grade::D) => Disposition::Recycle,
            _ => Disposition::Dispose,
        };
        agent.dispose_unit(lpn, disposition, operator).await?;
        report.n_disposed += 1;
    }
    Ok(report)
}
