//! The demo and the simulations: what runs a fleet on one machine without warehouses. Kept
//! out of the production crates, which ship to sites and the centre without any of it.
//!
//! Architecture invariant: nothing in `agent/` or `coordinator/` depends on this crate; it
//! drives them only through their public APIs, the way an operator's tools would.

pub mod cli;
pub mod customers;
pub mod local;
pub mod pty;
pub mod run;
pub mod smtp_sink;
pub mod station_sim;
