//! Modori's core: domain types, the wire codec and the sans-IO sync state machines.
//!
//! Architecture invariant: this crate does no IO. It has no tokio, quinn, rusqlite or serial
//! dependency and never reads a clock: time is passed in by the caller as milliseconds. That is
//! what lets `tests/` and the simulation drive it deterministically from a seed.

pub mod barcode;
pub mod domain;
pub mod exposition;
pub mod geo;
pub mod label;
pub mod op;
pub mod repair;
pub mod station;
pub mod sync;
pub mod tradein;
pub mod wire;

pub use domain::{
    Capability, Coordinates, DefectCode, Disposition, Epoch, Grade, Lpn, MerchantId, ReasonCode,
    ReturnLine, RmaId, Site, SiteId, Sku, Store, StoreId, StoreKind, UnitState,
};
pub use op::{CatalogItem, CommandBody, DispositionRule, OpBody, OpRecord};
