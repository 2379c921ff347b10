//! The store's connections to PostgreSQL, pooled: a store function runs on one of them on
//! tokio's blocking threads, as on SQLite it runs on the database thread. A connection the
//! server dropped (a restart, a failover, a network cut) is found broken when it comes back to
//! the pool or when it is next checked out, and replaced by a new one; the call it failed in
//! returns the error, since whether its commit reached the server cannot be known.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{PgError, PgTarget};
use crate::store::sql::{PgSql, Sql, SqlError};

/// Connections a coordinator keeps to PostgreSQL at most: the HTTP handlers and the sync's
/// apply share them; writers are serialised by [`crate::store::sql::PG_WRITE_LOCK`] anyway,
/// so more mostly helps the readers.
pub const PG_POOL_SIZE_DEFAULT: u32 = 8;
/// How long a call waits for a connection (the pool's all busy, or the server unreachable and
/// being retried) before it fails naming the server.
pub const PG_CHECKOUT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// The pool's size and patience.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    pub size: u32,
    pub checkout_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            size: PG_POOL_SIZE_DEFAULT,
            checkout_timeout: PG_CHECKOUT_TIMEOUT_DEFAULT,
        }
    }
}

struct Manager {
    target: PgTarget,
    ca_file: Option<PathBuf>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgSql;
    type Error = PgError;

    fn connect(&self) -> Result<PgSql, PgError> {
        self.target.connect(self.ca_file.as_deref()).map(PgSql::new)
    }

    fn is_valid(&self, conn: &mut PgSql) -> Result<(), PgError> {
        conn.client()
            .simple_query("")
            .map(|_| ())
            .map_err(|e| self.target.query_error(e))
    }

    fn has_broken(&self, conn: &mut PgSql) -> bool {
        conn.client().is_closed()
    }
}

/// Logs the pool's own failures to connect in the background (a call that waits on them
/// reports its own error).
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<PgError> for LogErrors {
    fn handle_error(&self, error: PgError) {
        tracing::warn!(error = %error, "PostgreSQL connection failed");
    }
}

/// Handle to the pool. Cheap to clone.
#[derive(Clone)]
pub struct PgDb {
    pool: Arc<Pool>,
    target: String,
}

/// The pool, closed off the async runtime when its last handle goes: the driver blocks while
/// it closes a connection, which must not happen on a runtime thread.
struct Pool(Option<r2d2::Pool<Manager>>);

impl Pool {
    fn get(&self) -> &r2d2::Pool<Manager> {
        self.0.as_ref().expect("taken only in drop")
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(pool));
            }
        }
    }
}

impl PgDb {
    /// Connects once, so a wrong URL, password or certificate is said at start rather than at
    /// the first call. The driver blocks while it connects: this runs it off the runtime.
    pub async fn open(
        target: &PgTarget,
        ca_file: Option<&Path>,
        settings: PoolSettings,
    ) -> Result<Self, PgError> {
        let manager = Manager {
            target: target.clone(),
            ca_file: ca_file.map(Path::to_owned),
        };
        // Closing a connection blocks too: the first is dropped on the same thread.
        let (manager, first) = tokio::task::spawn_blocking(move || {
            let first = r2d2::ManageConnection::connect(&manager).map(drop);
            (manager, first)
        })
        .await
        .map_err(|e| PgError::Interrupted {
            target: target.describe(),
            reason: e.to_string(),
        })?;
        first?;
        let pool = r2d2::Pool::builder()
            .max_size(settings.size.max(1))
            .min_idle(Some(0))
            .connection_timeout(settings.checkout_timeout)
            .error_handler(Box::new(LogErrors))
            .build_unchecked(manager);
        Ok(Self {
            pool: Arc::new(Pool(Some(pool))),
            target: target.describe(),
        })
    }

    /// `user@host:port/database`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Connections open now, and how many of them are idle.
    pub fn connections(&self) -> (u32, u32) {
        let state = self.pool.get().state();
        (state.connections, state.idle_connections)
    }

    /// Runs `f` on a connection of the pool, off the async runtime, and returns its result.
    pub async fn call<T, E>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<SqlError> + Send + 'static,
    {
        let pool = self.pool.get().clone();
        let target = self.target.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| {
                E::from(SqlError::Connection(format!(
                    "no connection to {target} within {:?}: {e}",
                    pool.connection_timeout()
                )))
            })?;
            f(&mut *conn)
        })
        .await
        .map_err(|e| {
            E::from(SqlError::Connection(format!(
                "the database call ended: {e}"
            )))
        })?
    }
}
