//! API keys on requests. [`require_key`] stands before every `/api/v1` route but the OpenAPI
//! document: no key, or an unknown or revoked one, is a 401 before any handler runs. Handlers
//! then take the [`Caller`] and check its scope (403 when it does not cover the resource).
//!
//! `/healthz` and `/metrics` stay open: they are for loopback ops tooling (systemd, the
//! Prometheus scraper) and show no return or customer.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use modori_shared::domain::MerchantId;

use super::error::ApiError;
use super::OPENAPI_PATH;
use crate::apikeys::{self, Scope};
use crate::store::lifecycle::Owner;
use crate::Ctx;

/// The key a request was made with.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: String,
    pub scope: Scope,
}

fn needs_key(path: &str) -> bool {
    (path == "/api/v1" || path.starts_with("/api/v1/")) && path != OPENAPI_PATH
}

/// Middleware: authenticates `/api/v1` requests by their bearer key, looked up in the database
/// on every request, so a key revoked by another process (the CLI) fails at once.
pub async fn require_key(State(ctx): State<Arc<Ctx>>, mut req: Request, next: Next) -> Response {
    if !needs_key(req.uri().path()) {
        return next.run(req).await;
    }
    match authenticate(&ctx, req.headers()).await {
        Ok(caller) => {
            tracing::debug!(key_id = %caller.key_id, scope = %caller.scope,
                            method = %req.method(), path = req.uri().path(), "API request");
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            tracing::info!(method = %req.method(), path = req.uri().path(), status = e.status().as_u16(),
                           "API request refused");
            e.into_response()
        }
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("an API key is needed: Authorization: Bearer <key>")
    })?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    match text.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => Ok(key.trim()),
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be: Bearer <key>",
        )),
    }
}

async fn authenticate(ctx: &Ctx, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let key = bearer(headers)?.to_owned();
    let found = ctx.db.call(move |c| apikeys::authenticate(c, &key)).await?;
    match found {
        Some((key_id, scope)) => Ok(Caller { key_id, scope }),
        None => Err(ApiError::unauthorized("unknown or revoked API key")),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Put there by `require_key`; absent only on a route outside `/api/v1`.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("an API key is needed"))
    }
}

impl Caller {
    fn refuse(&self, what: &str) -> ApiError {
        ApiError::forbidden(format!(
            "API key {} (scope {}) does not cover {what}",
            self.key_id, self.scope
        ))
    }

    /// Central ops only.
    pub fn require_ops(&self, what: &str) -> Result<(), ApiError> {
        match self.scope {
            Scope::Ops => Ok(()),
            _ => Err(self.refuse(what)),
        }
    }

    /// Ops, or the merchant itself.
    pub fn require_merchant(&self, merchant: &MerchantId) -> Result<(), ApiError> {
        match &self.scope {
            Scope::Ops => Ok(()),
            Scope::Merchant(m) if m == merchant => Ok(()),
            _ => Err(self.refuse(&format!("merchant {merchant}"))),
        }
    }

    /// Ops, the return's merchant, or the store it was registered at.
    pub fn require_return(&self, rma: &str, owner: &Owner) -> Result<(), ApiError> {
        let allowed = match &self.scope {
            Scope::Ops => true,
            Scope::Merchant(m) => owner.merchant.as_deref() == Some(m.as_str()),
            Scope::Store(s) => owner.origin_store.as_deref() == Some(s.as_str()),
        };
        match allowed {
            true => Ok(()),
            false => Err(self.refuse(&format!("return {rma}"))),
        }
    }
}
