//! Central ops routes (ops keys only): the sites, anomalies, quarantine, and a customer's
//! request to be forgotten.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use modori_shared::domain::{Lpn, RmaId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::{rfc3339, ANOMALIES_LIST_MAX};
use crate::store::{self, AnomalyRow, QuarantinedUnit};
use crate::Ctx;

/// Longest customer reference, in characters (as the API document can state it).
pub const CUSTOMER_REF_CHARS_MAX: usize = 64;

#[derive(Serialize, ToSchema)]
pub struct SiteView {
    id: String,
    name: String,
    /// Its name in Japanese, when the fleet file gives one (`name_ja`).
    name_ja: Option<String>,
    latitude: f64,
    longitude: f64,
    online: bool,
    protocol_version: Option<u16>,
    epoch: Option<String>,
    /// Highest op seq of the site's current epoch applied here.
    applied_seq: u64,
    /// Ops the site has recorded that are not applied here yet (for an offline site, at least
    /// this many, from its last report); null when unknown, never 0 for a site that is offline.
    lag_ops: Option<u64>,
    /// Why `lag_ops` is null.
    lag_ops_unknown: Option<String>,
    /// RFC 3339, or null.
    last_seen: Option<String>,
    commands_sent_seq: u64,
    commands_acked_seq: u64,
}

/// Every site: online, sync position and lag.
#[utoipa::path(get, path = "/api/v1/sites", tag = "ops", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<SiteView>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn sites(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
) -> Result<Json<Vec<SiteView>>, ApiError> {
    caller.require_ops("the sites")?;
    let ids: Vec<_> = ctx.fleet.sites.iter().map(|s| s.id.clone()).collect();
    let synced = ctx
        .db
        .call(move |c| {
            ids.iter()
                .map(|id| store::site_sync(c, id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let views = ctx
        .fleet
        .sites
        .iter()
        .zip(synced)
        .map(|(site, sync)| {
            let live = ctx.live.get(&site.id);
            // The live connection knows the current epoch; otherwise the newest one stored.
            let epoch = live.epoch.or(sync.epoch);
            let applied_seq = if live.epoch.is_some() && live.epoch != sync.epoch {
                live.applied_seq
            } else {
                sync.applied_seq.max(live.applied_seq)
            };
            let lag = live.lag_ops(applied_seq);
            ctx.metrics.site_lag(&site.id, lag.ok());
            SiteView {
                id: site.id.to_string(),
                name: site.name.clone(),
                name_ja: ctx.fleet.names_ja.get(site.id.as_str()).cloned(),
                latitude: site.location.lat(),
                longitude: site.location.lon(),
                online: live.connection.is_some(),
                protocol_version: live.protocol_version,
                epoch: epoch.map(|e| e.to_string()),
                applied_seq,
                lag_ops: lag.ok(),
                lag_ops_unknown: lag.err().map(str::to_owned),
                last_seen: live.last_seen_ms.and_then(rfc3339),
                commands_sent_seq: sync.command_head_seq,
                commands_acked_seq: sync.command_acked_seq,
            }
        })
        .collect();
    Ok(Json(views))
}

/// The newest ops-are-facts anomalies (impersonation, invalid transitions, hash mismatches,
/// undecodable ops, units received for closed returns), newest first.
#[utoipa::path(get, path = "/api/v1/anomalies", tag = "ops", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<AnomalyRow>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn anomalies(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
) -> Result<Json<Vec<AnomalyRow>>, ApiError> {
    caller.require_ops("anomalies")?;
    let rows = ctx
        .db
        .call(|c| store::anomalies(c, ANOMALIES_LIST_MAX))
        .await?;
    Ok(Json(rows))
}

/// Units received as unidentified, waiting to be matched.
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "ops", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<QuarantinedUnit>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn quarantine(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
) -> Result<Json<Vec<QuarantinedUnit>>, ApiError> {
    caller.require_ops("the quarantine")?;
    let rows = ctx
        .db
        .call(|c| store::quarantine(c, ANOMALIES_LIST_MAX))
        .await?;
    Ok(Json(rows))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// The registered return the unit belongs to.
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    rma: String,
}

#[derive(Serialize, ToSchema)]
pub struct Matched {
    lpn: String,
    rma: String,
    site: String,
}

/// Matches a quarantined unit to a registered return; its site is told.
#[utoipa::path(post, path = "/api/v1/quarantine/{lpn}/match", tag = "ops", security(("bearer" = [])),
    params(("lpn" = String, Path, description = "The unit's license plate", pattern = "^[A-Z0-9._-]{1,64}$")),
    request_body = MatchRequest,
    responses(
        (status = 200, body = Matched),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such unit or return", body = ErrorBody),
        (status = 409, description = "The unit is not in quarantine", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn match_unit(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(lpn): ApiPath<String>,
    ApiJson(req): ApiJson<MatchRequest>,
) -> Result<Json<Matched>, ApiError> {
    caller.require_ops("the quarantine")?;
    let lpn = Lpn::new(lpn).map_err(|e| ApiError::invalid_path("lpn", e))?;
    let rma = RmaId::new(req.rma).map_err(|e| ApiError::invalid_field("rma", e))?;
    match crate::app::quarantine::match_unit(&ctx, lpn.clone(), rma.clone()).await {
        Ok(site) => Ok(Json(Matched {
            lpn: lpn.to_string(),
            rma: rma.to_string(),
            site: site.to_string(),
        })),
        Err(e @ (store::MatchError::UnknownUnit(_) | store::MatchError::UnknownReturn(_))) => {
            Err(ApiError::not_found(e.to_string()))
        }
        Err(e @ store::MatchError::NotQuarantined(_)) => Err(ApiError::conflict(e.to_string())),
        Err(store::MatchError::Store(e)) => Err(e.into()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Forgotten {
    customer: String,
    n_returns: usize,
}

/// A customer's request to be forgotten: their returns are pseudonymised here and the sites
/// that hold them are told to erase what they keep.
#[utoipa::path(delete, path = "/api/v1/customers/{reference}", tag = "ops", security(("bearer" = [])),
    params(("reference" = String, Path, description = "The commerce system's customer reference")),
    responses(
        (status = 200, body = Forgotten),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No return of this customer holds personal data", body = ErrorBody)))]
pub async fn forget_customer(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(reference): ApiPath<String>,
) -> Result<Json<Forgotten>, ApiError> {
    caller.require_ops("customers' personal data")?;
    if reference.is_empty() || reference.chars().count() > CUSTOMER_REF_CHARS_MAX {
        return Err(ApiError::invalid_path(
            "reference",
            format!("must be 1..={CUSTOMER_REF_CHARS_MAX} characters"),
        ));
    }
    match crate::app::privacy::forget_customer(&ctx, reference.clone()).await? {
        0 => Err(ApiError::not_found(format!(
            "no return of customer {reference:?} holds personal data"
        ))),
        n => Ok(Json(Forgotten {
            customer: reference,
            n_returns: n,
        })),
    }
}
