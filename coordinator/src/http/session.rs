//! Browser sessions for the dashboard and the store counter.
//!
//! A page cannot send `Authorization` on a server-sent event stream, and must never hold the
//! key in its script: so `POST /login` takes the key once (a form), checks it like the API
//! does, and answers with a random session id in an `HttpOnly; SameSite=Strict` cookie. The
//! server keeps sessions in its database (`store::sessions`, so a restart logs nobody out),
//! keyed by the SHA-256 of the id, with the key id, the scope they were opened with and their
//! expiry. Every request by session checks that the key is still live, so revoking a key
//! closes its sessions too; expired sessions are deleted when met, at each login and by the
//! hourly sweep.
//!
//! The cookie is set without `Secure`, which `http::serve` adds to every cookie of an answer
//! served over TLS (its own, or a trusted proxy's).

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use rand::TryRngCore;
use serde::Deserialize;

use super::error::ApiError;
use crate::apikeys::{self, Scope};
use crate::store::sessions;
use crate::Ctx;

/// The cookie that carries the session id.
pub const SESSION_COOKIE: &str = "modori_session";
/// A session ends this long after login.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;
/// Sessions stored at most; past it those closest to expiry are dropped.
pub const SESSIONS_MAX: usize = 10_000;
/// Random bytes in a session id.
pub const SESSION_ID_BYTES: usize = 32;

/// The header a page's `POST` carries its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token of a session: derived from its id, which only the browser holding the
/// cookie knows (the cookie is HttpOnly; the page is handed the token, never the id), so no
/// other site can forge a request carrying it, whatever a browser does with SameSite.
pub fn csrf_token(session_id: &str) -> String {
    apikeys::sha256_hex(&format!("modori-csrf:{session_id}"))
}

/// Whether two strings are equal, in a time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A new session id: [`SESSION_ID_BYTES`] from the OS, in hex (the cookie's value).
fn new_session_id() -> Result<String, apikeys::ApiKeyError> {
    let mut secret = [0u8; SESSION_ID_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret)
        .map_err(|e| apikeys::ApiKeyError::Entropy(e.to_string()))?;
    Ok(secret.iter().map(|b| format!("{b:02x}")).collect())
}

/// Opens a session for a key; returns its id, shown only in the login's answer, and how many
/// sessions are open.
pub async fn open(
    ctx: &Ctx,
    key_id: String,
    scope: Scope,
) -> Result<(String, usize), apikeys::ApiKeyError> {
    let id = new_session_id()?;
    let now_ms = ctx.clock.now_ms();
    let stored = sessions::Session {
        key_id,
        scope,
        expires_ms: now_ms + SESSION_TTL_MS,
    };
    let sha256 = apikeys::sha256_hex(&id);
    let n_open = ctx
        .db
        .call(move |c| sessions::open(c, &sha256, &stored, now_ms, SESSIONS_MAX))
        .await?;
    Ok((id, n_open))
}

/// The session id in the request's cookies, if any.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| v.len() == 2 * SESSION_ID_BYTES && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The browser a page request comes from: its session, checked against the live key.
#[derive(Clone, Debug)]
pub struct Browser {
    pub key_id: String,
    pub scope: Scope,
    pub session_id: String,
}

/// Why a request has no usable session.
#[derive(Debug)]
pub enum NoSession {
    /// No cookie, an unknown or expired session, or its key was revoked.
    Missing,
    Failed(ApiError),
}

impl Browser {
    /// The session of `headers`, if it is open and its key still live.
    pub async fn of(ctx: &Ctx, headers: &HeaderMap) -> Result<Self, NoSession> {
        let id = session_id(headers).ok_or(NoSession::Missing)?;
        let sha256 = apikeys::sha256_hex(id);
        let now_ms = ctx.clock.now_ms();
        let session = ctx
            .db
            .call(move |c| sessions::live(c, &sha256, now_ms))
            .await
            .map_err(|e| NoSession::Failed(e.into()))?
            .ok_or(NoSession::Missing)?;
        Ok(Self {
            key_id: session.key_id,
            scope: session.scope,
            session_id: id.to_owned(),
        })
    }

    /// Central ops only (a 403 names the scope).
    pub fn require_ops(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Ops => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "this page is for central ops; you are logged in as {}",
                self.scope
            ))),
        }
    }

    /// A state-changing request carries this session's CSRF token in [`CSRF_HEADER`].
    pub fn require_csrf(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match same(sent, &csrf_token(&self.session_id)) {
            true => Ok(()),
            false => Err(ApiError::forbidden(
                "this request did not come from a page of this session: reload the page and try again",
            )),
        }
    }

    /// The store of a store session.
    pub fn require_store(&self) -> Result<modori_shared::domain::StoreId, ApiError> {
        match &self.scope {
            Scope::Store(s) => Ok(s.clone()),
            _ => Err(ApiError::forbidden(format!(
                "the store counter needs a store key; you are logged in as {}",
                self.scope
            ))),
        }
    }
}

impl FromRequestParts<Arc<Ctx>> for Browser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<Ctx>) -> Result<Self, ApiError> {
        match Browser::of(ctx, &parts.headers).await {
            Ok(b) => Ok(b),
            Err(NoSession::Missing) => Err(ApiError::unauthorized(
                "log in first: no session, or it expired or its key was revoked",
            )),
            Err(NoSession::Failed(e)) => Err(e),
        }
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: String,
    #[serde(default)]
    next: Option<String>,
}

/// Where a login may send the browser: only our own pages (no open redirect).
fn landing(next: Option<&str>, scope: &Scope) -> &'static str {
    match (next, scope) {
        (Some("/store"), Scope::Store(_)) => "/store",
        (_, Scope::Store(_)) => "/store",
        (Some("/returns"), Scope::Ops) => "/returns",
        (Some("/quarantine"), Scope::Ops) => "/quarantine",
        _ => "/",
    }
}

fn cookie(value: &str, max_age_s: i64) -> HeaderValue {
    let text =
        format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `POST /login` (form `key`, optional `next`): opens a session for a live ops or store key
/// and sends the browser to its page; a wrong key goes back to the form with an error.
pub async fn login(State(ctx): State<Arc<Ctx>>, Form(form): Form<LoginForm>) -> Response {
    let key = form.key.trim().to_owned();
    let found = match ctx.db.call(move |c| apikeys::authenticate(c, &key)).await {
        Ok(found) => found,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some((key_id, scope)) = found else {
        tracing::info!("login refused: unknown or revoked key");
        return Redirect::to("/login?error=key").into_response();
    };
    if matches!(scope, Scope::Merchant(_)) {
        tracing::info!(key_id = %key_id, "login refused: a merchant key has no page");
        return Redirect::to("/login?error=scope").into_response();
    }
    let to = landing(form.next.as_deref(), &scope);
    match open(&ctx, key_id.clone(), scope.clone()).await {
        Ok((id, n_sessions)) => {
            tracing::info!(key_id = %key_id, scope = %scope, n_sessions, "logged in");
            let mut res = Redirect::to(to).into_response();
            res.headers_mut()
                .insert(header::SET_COOKIE, cookie(&id, SESSION_TTL_MS / 1000));
            res
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /logout`: closes the session and clears the cookie.
pub async fn logout(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        let sha256 = apikeys::sha256_hex(id);
        if let Err(e) = ctx.db.call(move |c| sessions::close(c, &sha256)).await {
            return ApiError::from(e).into_response();
        }
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie("", 0));
    res
}

/// A page for a browser without a session: to the login form, coming back here after.
pub fn to_login(next: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/login?next={next}"))],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_must_look_like_an_id() {
        let id = "ab".repeat(SESSION_ID_BYTES);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {SESSION_COOKIE}={id}; x=1")).unwrap(),
        );
        assert_eq!(session_id(&headers), Some(id.as_str()));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("modori_session=not-an-id"),
        );
        assert_eq!(session_id(&headers), None);
    }

    #[test]
    fn a_login_lands_only_on_our_pages() {
        let store = Scope::Store(modori_shared::domain::StoreId::new("st-ginza").unwrap());
        assert_eq!(landing(Some("https://evil.example"), &Scope::Ops), "/");
        assert_eq!(landing(Some("/store"), &Scope::Ops), "/");
        assert_eq!(landing(None, &store), "/store");
        assert_eq!(landing(Some("/returns"), &Scope::Ops), "/returns");
        assert_eq!(landing(Some("/returns"), &store), "/store");
    }

    #[test]
    fn a_csrf_token_is_its_sessions_alone() {
        let browser = |id: &str| Browser {
            key_id: "k".into(),
            scope: Scope::Ops,
            session_id: id.into(),
        };
        let (a, b) = (browser(&"a".repeat(64)), browser(&"b".repeat(64)));
        let with = |token: &str| {
            let mut h = HeaderMap::new();
            h.insert(CSRF_HEADER, HeaderValue::from_str(token).unwrap());
            h
        };
        let token = csrf_token(&a.session_id);
        assert!(a.require_csrf(&with(&token)).is_ok());
        assert!(b.require_csrf(&with(&token)).is_err());
        assert!(a.require_csrf(&with(&token[..63])).is_err());
        assert!(a.require_csrf(&HeaderMap::new()).is_err());
        assert_ne!(token, a.session_id, "the token is not the id");
    }
}
