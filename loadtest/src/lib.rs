//! Modori's fleet load harness (`modori-load`): a coordinator, the real agents as processes and
//! up to a thousand simulated sites (in-process agents with their own certificates) under load,
//! measured from outside, against an HTTP/1.1 JSON baseline through the same store. See
//! [`run`] for the phases and `README.md` for the command.
//!
//! Architecture invariant: the harness drives and watches the fleet only through what a site or
//! an operator has (`ctl`, the agent's store API on a stopped agent, read-only database reads,
//! `/proc`), so what it measures is the code that ships. Nothing here is asserted on timing:
//! figures go into the report beside their targets.

pub mod baseline;
pub mod binaries;
pub mod ceiling;
pub mod cli;
pub mod fill;
pub mod machine;
pub mod observe;
pub mod procfs;
pub mod report;
pub mod run;
pub mod sims;
pub mod stats;
pub mod wire;
