//! The IO both services share, the way quinn's endpoints share `quinn-udp`: the wall clock, one
//! SQLite database behind one thread, TLS and frames over QUIC, config files, systemd,
//! backups, the data-dir lock, the generations file and the binary edge.
//!
//! Architecture invariant: this crate knows neither service. Nothing here names a site's or
//! the coordinator's tables, configs or messages beyond the wire frames of `shared`; a service
//! passes in what differs (its migrations, its failpoint names, its restore step).

pub mod backup;
pub mod checks;
pub mod clock;
pub mod config_file;
pub mod dir_lock;
pub mod edge;
pub mod generations;
pub mod net;
pub mod sqlite;
pub mod systemd;
pub mod tls;
