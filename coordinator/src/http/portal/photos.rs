//! What a customer wrote and showed of their items, for ops on the return's page: each line's
//! note and its photos. A photo is served only to an ops session, only as the image type its
//! first bytes were checked as when it was uploaded, never sniffed, never as a page.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use modori_shared::domain::RmaId;
use serde::Serialize;

use super::upload::ImageType;
use crate::http::error::{ApiError, ApiPath};
use crate::http::session::Browser;
use crate::{store, Ctx};

/// An image answer may hold nothing active even if a browser were to render it as a page.
const PHOTO_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; sandbox";

pub fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/ui/returns/{rma}/customer", get(customer_words))
        .route("/ui/returns/{rma}/photos/{id}", get(photo))
}

#[derive(Serialize)]
struct LineWords {
    sku: String,
    note: Option<String>,
    /// Where each photo is served.
    photos: Vec<String>,
}

#[derive(Serialize)]
struct CustomerWords {
    lines: Vec<LineWords>,
}

fn rma_of(rma: &str) -> Result<RmaId, ApiError> {
    RmaId::new(rma.trim().to_owned()).map_err(|e| ApiError::invalid_path("rma", e))
}

async fn customer_words(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    ApiPath(rma): ApiPath<String>,
) -> Result<Json<CustomerWords>, ApiError> {
    browser.require_ops()?;
    let rma = rma_of(&rma)?;
    let r = rma.to_string();
    let lines = ctx
        .db
        .call(move |c| store::photos::of_return(c, &r))
        .await?;
    Ok(Json(CustomerWords {
        lines: lines
            .into_iter()
            .map(|l| LineWords {
                photos: l
                    .photos
                    .iter()
                    .map(|id| format!("/ui/returns/{rma}/photos/{id}"))
                    .collect(),
                sku: l.sku,
                note: l.note,
            })
            .collect(),
    }))
}

async fn photo(
    State(ctx): State<Arc<Ctx>>,
    browser: Browser,
    ApiPath((rma, id)): ApiPath<(String, i64)>,
) -> Result<Response, ApiError> {
    browser.require_ops()?;
    let rma = rma_of(&rma)?;
    let r = rma.to_string();
    let found = ctx
        .db
        .call(move |c| store::photos::photo(c, &r, id))
        .await?;
    let (ty, bytes) = found
        .and_then(|(ty, bytes)| ImageType::of_content_type(&ty).map(|t| (t, bytes)))
        .ok_or_else(|| ApiError::not_found(format!("no photo {id} of {rma}")))?;
    let disposition = format!("inline; filename=\"{rma}-{id}.{}\"", ty.extension());
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ty.content_type()),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PHOTO_CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
