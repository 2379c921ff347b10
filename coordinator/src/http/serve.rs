//! The HTTP listeners: the public one (`http.listen`) and, when configured, the ops one
//! (`http.ops_listen`); plain HTTP, or HTTPS with rustls on ring when `http.tls_cert` and
//! `http.tls_key` are set. The certificate sits behind a resolver that SIGHUP re-reads
//! ([`HttpTls::reload`]), so the listeners stay open and each new connection gets the
//! certificate then in force.
//!
//! What a request served over TLS (or through a trusted proxy that says it was) answers with:
//! HSTS, and `Secure` on every cookie it sets. With an ops listener, the public one answers
//! 404 for every path but the portal, the API and `/healthz` (`is_public_path`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use modori_runtime::tls::{self, TlsError};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::long_uri::{Guarded, GuardedStream, Peer};
use crate::config::HttpSection;
use crate::{CoordinatorError, Ctx};

/// A TLS handshake not done in this time is dropped, so a client that stalls it holds nothing.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once per listener; more connections wait in the kernel's
/// backlog.
pub const TLS_HANDSHAKES_MAX: usize = 256;
/// Handshaken connections waiting for the HTTP server to take them.
pub const TLS_ACCEPTED_QUEUE: usize = 64;
/// `Strict-Transport-Security` over TLS: a year, the usual floor for preload lists.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The certificate served over HTTPS, re-read from its files on [`HttpTls::reload`].
#[derive(Debug)]
pub struct HttpTls {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl HttpTls {
    /// Loads the certificate chain and key; fails on a missing, empty or unreadable file or
    /// a key ring cannot use.
    pub fn load(cert_path: PathBuf, key_path: PathBuf) -> Result<Self, TlsError> {
        let current = RwLock::new(Arc::new(certified(&cert_path, &key_path)?));
        Ok(Self {
            cert_path,
            key_path,
            current,
        })
    }

    /// Re-reads the files; on an error the certificate in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(certified(&self.cert_path, &self.key_path)?);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for HttpTls {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

fn certified(
    cert_path: &std::path::Path,
    key_path: &std::path::Path,
) -> Result<CertifiedKey, TlsError> {
    let chain = tls::load_certs("HTTPS certificate", cert_path)?;
    let key = tls::load_key("HTTPS key", key_path)?;
    let signing = tls::provider().key_provider.load_private_key(key)?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match()?;
    Ok(certified)
}

/// The bound listeners, before serving.
pub struct HttpListeners {
    public: TcpListener,
    ops: Option<TcpListener>,
    tls: Option<Arc<HttpTls>>,
    trusted_proxies: Arc<[IpAddr]>,
}

impl HttpListeners {
    pub async fn bind(http: &HttpSection) -> Result<Self, CoordinatorError> {
        let tls = match (&http.tls_cert, &http.tls_key) {
            (Some(cert), Some(key)) => {
                Some(Arc::new(HttpTls::load(cert.clone(), key.clone()).map_err(
                    |e| CoordinatorError::ConfigKey {
                        key: "http.tls_cert".into(),
                        message: e.to_string(),
                    },
                )?))
            }
            _ => None,
        };
        let public = bind(http.listen).await?;
        let ops = match http.ops_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Self {
            public,
            ops,
            tls,
            trusted_proxies: http.trusted_proxies.clone().into(),
        })
    }

    pub fn public_addr(&self) -> Result<SocketAddr, CoordinatorError> {
        local_addr(&self.public)
    }

    pub fn ops_addr(&self) -> Result<Option<SocketAddr>, CoordinatorError> {
        self.ops.as_ref().map(local_addr).transpose()
    }

    /// The certificate SIGHUP re-reads, when serving HTTPS.
    pub fn tls(&self) -> Option<Arc<HttpTls>> {
        self.tls.clone()
    }

    /// Serves `ctx`'s routes on every listener until `shutdown`.
    pub fn spawn(
        self,
        ctx: Arc<Ctx>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Vec<JoinHandle<()>>, CoordinatorError> {
        let facts = Facts {
            listener_tls: self.tls.is_some(),
            trusted_proxies: self.trusted_proxies,
        };
        let routes = super::router(ctx.clone());
        // The TLS headers outermost, so the public listener's 404s carry HSTS too.
        let public = if self.ops.is_some() {
            routes.clone().layer(middleware::from_fn(public_only))
        } else {
            routes.clone()
        }
        .layer(middleware::from_fn_with_state(facts.clone(), over_tls));
        let full = routes.layer(middleware::from_fn_with_state(facts, over_tls));
        let acceptor = self
            .tls
            .as_ref()
            .map(|t| t.acceptor())
            .transpose()
            .map_err(|e| CoordinatorError::ConfigKey {
                key: "http.tls_cert".into(),
                message: e.to_string(),
            })?;
        let mut tasks = vec![serve(
            self.public,
            public,
            acceptor.clone(),
            shutdown.clone(),
        )];
        if let Some(ops) = self.ops {
            tasks.push(serve(ops, full, acceptor, shutdown));
        }
        Ok(tasks)
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, CoordinatorError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| CoordinatorError::Http { addr, source })
}

fn local_addr(l: &TcpListener) -> Result<SocketAddr, CoordinatorError> {
    l.local_addr().map_err(|source| CoordinatorError::Http {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })
}

fn serve(
    listener: TcpListener,
    router: Router,
    acceptor: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    // The portal counts failed lookups by the client's address.
    let service = router.into_make_service_with_connect_info::<Peer>();
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    tokio::spawn(async move {
        let served = match acceptor {
            None => {
                axum::serve(Guarded(listener), service)
                    .with_graceful_shutdown(stop)
                    .await
            }
            Some(acceptor) => {
                axum::serve(TlsGuarded::start(listener, acceptor), service)
                    .with_graceful_shutdown(stop)
                    .await
            }
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server failed");
        }
    })
}

/// The HTTPS listener: TCP connections handshaken by a task of their own (a slow client
/// holds up no other), then watched like plain ones.
pub struct TlsGuarded {
    accepted: mpsc::Receiver<(GuardedStream<TlsStream<TcpStream>>, SocketAddr)>,
    local: std::io::Result<SocketAddr>,
    acceptor_task: JoinHandle<()>,
}

impl TlsGuarded {
    fn start(listener: TcpListener, acceptor: TlsAcceptor) -> Self {
        let local = listener.local_addr();
        let (tx, accepted) = mpsc::channel(TLS_ACCEPTED_QUEUE);
        let handshakes = Arc::new(Semaphore::new(TLS_HANDSHAKES_MAX));
        let acceptor_task = tokio::spawn(async move {
            loop {
                let Ok(permit) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, addr) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(error = %e, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((GuardedStream::new(stream), addr)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %addr, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(peer = %addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Self {
            accepted,
            local,
            acceptor_task,
        }
    }
}

impl Drop for TlsGuarded {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

impl axum::serve::Listener for TlsGuarded {
    type Io = GuardedStream<TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept task ended: nothing more will come; shutdown ends the server.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match &self.local {
            Ok(addr) => Ok(*addr),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsGuarded>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsGuarded>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// What decides whether a request came over TLS.
#[derive(Clone)]
struct Facts {
    listener_tls: bool,
    trusted_proxies: Arc<[IpAddr]>,
}

/// Whether the client reached us over TLS: this listener's, or a trusted proxy's that says
/// so. Anyone else's `X-Forwarded-Proto` is ignored, as any client can send one.
fn served_over_tls(facts: &Facts, req: &Request) -> bool {
    if facts.listener_tls {
        return true;
    }
    let Some(peer) = req.extensions().get::<ConnectInfo<Peer>>() else {
        return false;
    };
    facts.trusted_proxies.contains(&peer.0 .0.ip())
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Middleware: over TLS, HSTS and `Secure` cookies; in the clear, neither (HSTS over plain
/// HTTP is ignored by browsers, and a `Secure` cookie would never come back).
async fn over_tls(State(facts): State<Facts>, req: Request, next: Next) -> Response {
    let tls = served_over_tls(&facts, &req);
    let mut res = next.run(req).await;
    if !tls {
        return res;
    }
    let headers = res.headers_mut();
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if !cookies.is_empty() {
        headers.remove(header::SET_COOKIE);
        for c in cookies {
            headers.append(header::SET_COOKIE, secure_cookie(c));
        }
    }
    res
}

fn secure_cookie(cookie: HeaderValue) -> HeaderValue {
    let Ok(text) = cookie.to_str() else {
        return cookie;
    };
    let has_secure = text
        .split(';')
        .any(|attr| attr.trim().eq_ignore_ascii_case("secure"));
    if has_secure {
        return cookie;
    }
    HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
}

/// What the public listener serves when ops have their own: the customer portal and status
/// pages, the API (merchants' and stores' keys; key management excepted) and the health
/// check.
pub fn is_public_path(path: &str) -> bool {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    (under("/r") || under("/api/v1") || path == "/healthz") && !under("/api/v1/keys")
}

/// Middleware on the public listener when there is an ops one: every other path is 404, as
/// if it did not exist.
async fn public_only(req: Request, next: Next) -> Response {
    if is_public_path(req.uri().path()) {
        next.run(req).await
    } else {
        super::error::route_not_found().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_listener_keeps_the_portal_and_the_api_only() {
        for public in [
            "/r/brand-a",
            "/r/brand-a/s/abc",
            "/api/v1/returns",
            "/healthz",
        ] {
            assert!(is_public_path(public), "{public}");
        }
        for ops in [
            "/",
            "/store",
            "/login",
            "/ui/state",
            "/ui/store/scan/abc",
            "/metrics",
            "/api/v1/keys",
            "/api/v1/keys/ak-1",
            "/returns",
            "/rx",
            "/api/v10",
        ] {
            assert!(!is_public_path(ops), "{ops}");
        }
    }

    #[test]
    fn a_cookie_gets_secure_once() {
        let c = secure_cookie(HeaderValue::from_static("a=b; HttpOnly"));
        assert_eq!(c, "a=b; HttpOnly; Secure");
        let c = secure_cookie(HeaderValue::from_static("a=b; secure; HttpOnly"));
        assert_eq!(c, "a=b; secure; HttpOnly");
    }
}
