//! API keys over the API (ops keys only): made and revoked while the coordinator runs. The
//! secret is in the answer that makes a key, and nowhere afterwards.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::rfc3339;
use crate::apikeys::{self, ApiKeyError, KeyRecord, Scope, Source, KEYS_LIST_MAX};
use crate::Ctx;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// `ops`, `merchant:<id>` or `store:<id>` (a store of the fleet).
    #[schema(pattern = "^(ops|merchant:[a-z0-9-]{1,64}|store:[a-z0-9-]{1,64})$")]
    scope: String,
    /// Who or what uses it: up to 64 characters, no control characters.
    #[serde(default)]
    #[schema(pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]{0,64}$")]
    label: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    id: String,
    scope: String,
    label: Option<String>,
    /// api, cli, config or demo.
    source: String,
    created_at: Option<String>,
    /// Null while the key is live.
    revoked_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key itself: shown only here, never again (only its SHA-256 is kept).
    key: String,
    #[serde(flatten)]
    record: KeyView,
}

fn view(r: KeyRecord) -> KeyView {
    KeyView {
        id: r.id,
        scope: r.scope.to_string(),
        label: r.label,
        source: r.source,
        created_at: rfc3339(r.created_ms),
        revoked_at: r.revoked_ms.and_then(rfc3339),
    }
}

/// Makes an API key.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])),
    request_body = NewKey,
    responses(
        (status = 201, description = "The key, shown this once", body = CreatedKey),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "The scope's store is not in the fleet", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_key(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require_ops("API keys")?;
    let scope = Scope::parse(&req.scope).map_err(|e| ApiError::invalid_field("scope", e))?;
    scope
        .check_store_exists(&ctx.fleet.stores)
        .map_err(|e| ApiError::unknown_field("scope", e))?;
    apikeys::check_label(req.label.as_deref()).map_err(|e| ApiError::invalid_field("label", e))?;
    let now_ms = ctx.clock.now_ms();
    let (key, record) = ctx
        .db
        .call(move |c| apikeys::create(c, &scope, req.label.as_deref(), Source::Api, now_ms))
        .await?;
    tracing::info!(key_id = %record.id, by = %caller.key_id, "API key created over the API");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key,
            record: view(record),
        }),
    ))
}

/// Every key, newest first, revoked ones included; never a secret.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<KeyView>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_keys(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    caller.require_ops("API keys")?;
    let keys = ctx.db.call(|c| apikeys::list(c, KEYS_LIST_MAX)).await?;
    Ok(Json(keys.into_iter().map(view).collect()))
}

/// Revokes a key: its next request is refused. Revoking a revoked key changes nothing. The
/// last live ops key cannot be revoked here (409): nobody could make a key over the API again.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (not the key)")),
    responses(
        (status = 200, body = KeyView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The last live ops key", body = ErrorBody)))]
pub async fn revoke_key(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<KeyView>, ApiError> {
    caller.require_ops("API keys")?;
    let now_ms = ctx.clock.now_ms();
    let revoked = ctx
        .db
        .call(move |c| apikeys::revoke(c, &id, now_ms, true))
        .await;
    match revoked {
        Ok(record) => {
            tracing::info!(key_id = %record.id, by = %caller.key_id, "API key revoked over the API");
            Ok(Json(view(record)))
        }
        Err(e @ ApiKeyError::UnknownKey(_)) => Err(ApiError::not_found(e.to_string())),
        Err(e @ ApiKeyError::LastOpsKey(_)) => Err(ApiError::conflict(e.to_string())),
        Err(e) => Err(e.into()),
    }
}
