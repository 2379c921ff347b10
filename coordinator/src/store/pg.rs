//! The PostgreSQL backend, so far: choosing it by `storage.url`, connecting (TLS with rustls),
//! the schema (`migrate`), and a SQLite database copied in (`copy`). The store's other functions run on SQLite only; serving on
//! PostgreSQL is refused at start (see `cli`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

pub mod copy;
pub mod migrate;
pub mod pool;
mod tls;
pub mod wakeups;

/// Why a coordinator does not start on PostgreSQL yet; `run` says it after checking the
/// connection and migrating the schema, so the operator learns both.
pub const NOT_SERVING: &str = "the PostgreSQL backend so far carries the schema, `check` and \
     `migrate-store`, not serving: leave storage.url unset (or `sqlite:`) to serve from SQLite";

/// The password of a `storage.url` that carries none, as libpq reads it.
pub const PASSWORD_ENV: &str = "PGPASSWORD";
/// A connection attempt is given up after this long when the URL sets no `connect_timeout`.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum PgError {
    #[error("not a PostgreSQL URL the driver accepts ({0}); the form is postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]")]
    Url(String),
    #[error("storage.ca_file {path}: {message}")]
    Roots { path: PathBuf, message: String },
    // The driver's error is said in full here rather than chained as a source: its own
    // `Display` says only "db error", and a chain would repeat its cause.
    #[error("connecting to PostgreSQL at {target}: {}", reason(.error))]
    Connect {
        target: String,
        error: postgres::Error,
    },
    /// The runtime shut down, or the driver panicked, while a connection was being made.
    #[error("connecting to PostgreSQL at {target} was interrupted: {reason}")]
    Interrupted { target: String, reason: String },
    #[error("PostgreSQL at {target}: {}", reason(.error))]
    Query {
        target: String,
        error: postgres::Error,
    },
    #[error("the database at {target} is at migration {database}, newer than this build's {build}: run the build that migrated it (or a newer one)")]
    Newer {
        target: String,
        database: usize,
        build: usize,
    },
    #[error("the database at {target} {order}; the store compares and sorts text byte by byte, as on SQLite: create the database with CREATE DATABASE … TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER libc LOCALE 'C' (or 'C.UTF-8')")]
    TextOrder { target: String, order: String },
}

/// The driver's error with the server's own words, or with its cause (refused, timed out).
fn reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Where the coordinator keeps its data, from `storage.url`.
#[derive(Clone)]
pub enum Backend {
    /// Unset or `sqlite:`: `coordinator.db` under `storage.data_dir`.
    Sqlite,
    Postgres(Box<PgTarget>),
}

impl Backend {
    /// `url` as `storage.url` gives it; `password_env` is [`PASSWORD_ENV`]'s value, used when
    /// the URL carries no password.
    pub fn parse(url: Option<&str>, password_env: Option<String>) -> Result<Self, PgError> {
        match url {
            None | Some("sqlite:") => Ok(Self::Sqlite),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                PgTarget::parse(u, password_env).map(|t| Self::Postgres(Box::new(t)))
            }
            Some(_) => Err(PgError::Url(
                "it must be `sqlite:` or start with postgres:// or postgresql://".into(),
            )),
        }
    }
}

/// A PostgreSQL database to connect to: the driver's own config, parsed from the URL.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
}

impl PgTarget {
    fn parse(url: &str, password_env: Option<String>) -> Result<Self, PgError> {
        // The driver's error never repeats the URL, so the password stays out of messages.
        let mut config =
            postgres::Config::from_str(url).map_err(|e| PgError::Url(e.to_string()))?;
        if config.get_hosts().is_empty() {
            return Err(PgError::Url("it names no host".into()));
        }
        if config.get_dbname().is_none() {
            return Err(PgError::Url("it names no database".into()));
        }
        if config.get_password().is_none() {
            if let Some(p) = password_env {
                config.password(p);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT_DEFAULT);
        }
        Ok(Self { config })
    }

    /// `user@host:port/database`, never the password: for messages and logs.
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}@{host}:{port}/{}",
            self.config.get_user().unwrap_or(""),
            self.config.get_dbname().unwrap_or("")
        )
    }

    /// A connection, over TLS as `sslmode` asks, the server verified against `ca_file` (PEM)
    /// or, without it, the public web's roots. Blocking: call it off the async runtime.
    pub fn connect(&self, ca_file: Option<&Path>) -> Result<postgres::Client, PgError> {
        let tls = tls::RustlsConnect::new(client_config(ca_file)?);
        self.config.connect(tls).map_err(|error| PgError::Connect {
            target: self.describe(),
            error,
        })
    }

    pub fn query_error(&self, error: postgres::Error) -> PgError {
        PgError::Query {
            target: self.describe(),
            error,
        }
    }
}

fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, PgError> {
    let roots = match ca_file {
        Some(path) => {
            let bad = |message: String| PgError::Roots {
                path: path.to_owned(),
                message,
            };
            let certs = modori_runtime::tls::load_certs("storage.ca_file", path)
                .map_err(|e| bad(e.to_string()))?;
            modori_runtime::tls::root_store(&certs).map_err(|e| bad(e.to_string()))?
        }
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let config = rustls::ClientConfig::builder_with_provider(modori_runtime::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Url(format!("TLS versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, env: Option<&str>) -> PgTarget {
        match Backend::parse(Some(url), env.map(str::to_owned)) {
            Ok(Backend::Postgres(t)) => *t,
            Ok(Backend::Sqlite) => panic!("{url} chose SQLite"),
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn sqlite_unless_a_postgres_url() {
        assert!(matches!(Backend::parse(None, None), Ok(Backend::Sqlite)));
        assert!(matches!(
            Backend::parse(Some("sqlite:"), None),
            Ok(Backend::Sqlite)
        ));
        for bad in ["mysql://x/y", "sqlite:/tmp/x.db", ""] {
            assert!(
                matches!(Backend::parse(Some(bad), None), Err(PgError::Url(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn postgres_urls_parse_by_the_driver() {
        let t = target("postgresql://modori:pw@db.example:6543/modori", None);
        assert_eq!(t.describe(), "modori@db.example:6543/modori");
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&CONNECT_TIMEOUT_DEFAULT)
        );
        let t = target(
            "postgres://modori@db/modori?sslmode=require",
            Some("env-pw"),
        );
        assert_eq!(t.config.get_password(), Some(&b"env-pw"[..]));
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Require);
        // The URL's own password wins over the environment's.
        let t = target("postgres://modori:url-pw@db/modori", Some("env-pw"));
        assert_eq!(t.config.get_password(), Some(&b"url-pw"[..]));
    }

    #[test]
    fn malformed_urls_are_refused_without_their_password() {
        for bad in [
            "postgres://modori:secret@db/modori?sslmode=sometimes",
            "postgres://modori:secret@db:notaport/modori",
            "postgres://modori:secret@db",
            "postgres://modori:secret@db/modori?flavour=mint",
        ] {
            match Backend::parse(Some(bad), None) {
                Err(e @ PgError::Url(_)) => assert!(!e.to_string().contains("secret"), "{e}"),
                Err(e) => panic!("{bad}: {e}"),
                Ok(_) => panic!("{bad} was accepted"),
            }
        }
    }
}
