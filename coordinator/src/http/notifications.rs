//! Customers' messages: a customer's opt-out set over the API (ops keys, or the merchant's own),
//! and the unsubscribe page every message links to (`/r/{merchant}/u/{token}`, no key: the
//! token is the customer's). The page asks before it acts, so a mail scanner that follows
//! links unsubscribes no one; a mail client's one-click POST (RFC 8058) acts at once.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use modori_shared::domain::MerchantId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::orders::valid_email;
use super::page::page;
use crate::notify::{is_token_shaped, token_hash};
use crate::store::notifications as outbox;
use crate::Ctx;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOutRequest {
    /// The customer's email address, as on their orders.
    #[schema(
        pattern = "^[A-Za-z0-9_%+-]{1,32}(\\.[A-Za-z0-9_%+-]{1,16})?@[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?){0,3}\\.[A-Za-z]{2,16}$"
    )]
    email: String,
    /// True: the customer gets no more messages from this merchant (by any channel); false:
    /// they do again.
    opted_out: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OptOut {
    merchant: String,
    opted_out: bool,
}

/// Sets whether a customer of the merchant gets messages about their returns. Messages queued
/// and not sent yet are dropped when their turn comes.
#[utoipa::path(put, path = "/api/v1/notifications/{merchant}/opt-out", tag = "orders", security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = OptOutRequest,
    responses(
        (status = 200, body = OptOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_opt_out(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(req): ApiJson<OptOutRequest>,
) -> Result<Json<OptOut>, ApiError> {
    let merchant = MerchantId::new(merchant).map_err(|e| ApiError::invalid_path("merchant", e))?;
    caller.require_merchant(&merchant)?;
    if !valid_email(&req.email) {
        return Err(ApiError::invalid_field(
            "email",
            "not an email address this service writes to (local@domain.tld, ASCII)",
        ));
    }
    let (m, email, opted_out) = (merchant.to_string(), req.email, req.opted_out);
    let now_ms = ctx.clock.now_ms();
    ctx.db
        .call(move |c| outbox::set_opt_out(c, &m, &email, opted_out, now_ms))
        .await?;
    tracing::info!(merchant = %merchant, opted_out, key_id = %caller.key_id, "customer opt-out set");
    Ok(Json(OptOut {
        merchant: merchant.to_string(),
        opted_out,
    }))
}

/// The unsubscribe page and its action.
pub fn router() -> Router<Arc<Ctx>> {
    Router::new().route(
        "/r/{merchant}/u/{token}",
        get(unsubscribe_page).post(unsubscribe),
    )
}

/// The customer's email of the return a token opens, when the token is of `merchant`.
async fn token_email(ctx: &Ctx, merchant: &str, token: &str) -> Result<String, ApiError> {
    let not_found = || ApiError::not_found("this link is not valid (any more)");
    if !is_token_shaped(token) {
        return Err(not_found());
    }
    let hash = token_hash(token);
    let merchant = merchant.to_owned();
    let found = ctx
        .db
        .call(
            move |c| -> Result<Option<String>, crate::store::StoreError> {
                let Some((rma, Some(owner))) = outbox::token_return(c, &hash)? else {
                    return Ok(None);
                };
                if owner != merchant {
                    return Ok(None);
                }
                Ok(outbox::contact_of_return(c, &rma)?.map(|(_, contact)| contact.email))
            },
        )
        .await?;
    found.ok_or_else(not_found)
}

const PAGE_HEAD: &str = "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
    <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
    <title>配信停止 / Unsubscribe</title></head><body>";

async fn unsubscribe_page(
    State(ctx): State<Arc<Ctx>>,
    ApiPath((merchant, token)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    token_email(&ctx, &merchant, &token).await?;
    Ok(page(format!(
        "{PAGE_HEAD}<h1>お知らせの配信停止</h1>\
         <p>返品に関するお知らせ（メール・LINE）の配信を停止しますか？</p>\
         <p lang=\"en\">Stop messages about your returns (email and LINE)?</p>\
         <form method=\"post\"><button type=\"submit\">配信を停止する / Unsubscribe</button></form>\
         </body></html>"
    )))
}

async fn unsubscribe(
    State(ctx): State<Arc<Ctx>>,
    ApiPath((merchant, token)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let email = token_email(&ctx, &merchant, &token).await?;
    let (m, now_ms) = (merchant.clone(), ctx.clock.now_ms());
    ctx.db
        .call(move |c| outbox::set_opt_out(c, &m, &email, true, now_ms))
        .await?;
    tracing::info!(merchant = %merchant, "customer unsubscribed by their link");
    Ok(page(format!(
        "{PAGE_HEAD}<h1>配信を停止しました</h1>\
         <p>今後、返品に関するお知らせはお送りしません。</p>\
         <p lang=\"en\">You will get no more messages about your returns.</p></body></html>"
    )))
}
