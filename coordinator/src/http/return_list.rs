//! The returns list: search, filters, sort and pages (`GET /api/v1/returns`) and the same
//! list as CSV (`GET /api/v1/returns.csv`). The ops console's list page reads both through
//! its session (`ui`), with the same query checked by the same code.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::rfc3339;
use crate::apikeys::Scope;
use crate::store::return_list::{self, ListedReturn, ReturnFilter, Sort, SortKey};
use crate::Ctx;

/// Returns on one page at most.
pub const RETURN_LIST_PAGE_MAX: usize = 200;
/// Returns on a page when the query does not say.
pub const RETURN_LIST_PAGE_DEFAULT: usize = 50;
/// Highest page number asked for (with the largest pages, two million returns deep).
pub const RETURN_LIST_PAGE_NUMBER_MAX: u64 = 10_000;
/// Rows of one CSV export at most; the `x-total-count` header says how many matched.
pub const RETURN_EXPORT_ROWS_MAX: usize = 10_000;
/// Longest search text, in characters (the longest reference a return carries).
pub const SEARCH_CHARS_MAX: usize = 64;
/// Japan's offset from UTC, which a date in a query is a day of (Japan has no summer time).
const JAPAN_OFFSET_MS: i64 = 9 * 60 * 60 * 1000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

const STATUSES: [&str; 5] = ["expected", "receiving", "received", "cancelled", "expired"];

/// The list's query, every field optional.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// An RMA or the start of one, an order reference, a customer reference, a tracking
    /// number, or the start of a customer's name.
    #[param(max_length = 64)]
    q: Option<String>,
    #[param(pattern = "^(expected|receiving|received|cancelled|expired)$")]
    status: Option<String>,
    /// The site it is routed to.
    #[param(pattern = "^[a-z0-9-]{1,64}$")]
    site: Option<String>,
    /// The store it was registered at.
    #[param(pattern = "^[a-z0-9-]{1,64}$")]
    store: Option<String>,
    #[param(pattern = "^[a-z0-9-]{1,64}$")]
    merchant: Option<String>,
    /// Registered on or after this day in Japan, `YYYY-MM-DD`.
    #[param(format = Date)]
    from: Option<String>,
    /// Registered on or before this day in Japan, `YYYY-MM-DD` (before `from`: nothing).
    #[param(format = Date)]
    to: Option<String>,
    /// A key, `-` first for descending: `created` (the default is `-created`, newest first),
    /// `rma`, `status`, `site`, `merchant`, `store`.
    #[param(pattern = "^-?(created|rma|status|site|merchant|store)$")]
    sort: Option<String>,
    /// 1 (the default) to 10,000 (`RETURN_LIST_PAGE_NUMBER_MAX`).
    #[param(pattern = "^([1-9][0-9]{0,3}|10000)$")]
    page: Option<String>,
    /// 1 to 200 (`RETURN_LIST_PAGE_MAX`); 50 when absent.
    #[param(pattern = "^([1-9][0-9]?|1[0-9]{2}|200)$")]
    per_page: Option<String>,
}

/// A checked query: what to match, in what order, which page.
#[derive(Debug, PartialEq, Eq)]
pub struct Listing {
    pub filter: ReturnFilter,
    pub sort: Sort,
    /// From 1.
    pub page: u64,
    pub per_page: usize,
}

/// `YYYY-MM-DD` as the midnight starting that day in Japan (or the next one, with
/// `end_of_day`), in Unix ms.
fn time_ms(field: &str, text: &str, end_of_day: bool) -> Result<i64, ApiError> {
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid_field(
            field,
            format!("{text:?} is not a date: expected YYYY-MM-DD"),
        )
    })?;
    let midnight_ms = day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis() - JAPAN_OFFSET_MS)
        .ok_or_else(|| ApiError::invalid_field(field, "not a date"))?;
    Ok(midnight_ms + if end_of_day { DAY_MS } else { 0 })
}

fn number(field: &str, text: Option<&str>, default: u64, max: u64) -> Result<u64, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_field(
            field,
            format!("{text:?} is not a whole number from 1 to {max}"),
        )),
    }
}

/// An id filter: its shape (422), and that it names something `known` (404: nothing could
/// match, which is more likely a typing error than a question).
fn id_filter(
    field: &str,
    value: Option<String>,
    known: impl Fn(&str) -> bool,
) -> Result<Option<String>, ApiError> {
    let Some(v) = value else {
        return Ok(None);
    };
    let shaped = (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    match (shaped, known(&v)) {
        (true, true) => Ok(Some(v)),
        (false, _) => Err(ApiError::invalid_field(
            field,
            format!("{v:?} is not an id: a-z, 0-9 and -, 1 to 64 of them"),
        )),
        (true, false) => Err(ApiError::unknown_field(
            field,
            format!("no {field} {v:?} is known"),
        )),
    }
}

impl ListQuery {
    /// Checks every field, the sites and stores against the fleet; each error names its field.
    pub fn checked(self, ctx: &Ctx) -> Result<Listing, ApiError> {
        let search = self
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if search
            .as_ref()
            .is_some_and(|q| q.chars().count() > SEARCH_CHARS_MAX)
        {
            return Err(ApiError::invalid_field(
                "q",
                format!("longer than {SEARCH_CHARS_MAX} characters"),
            ));
        }
        let status = match self.status {
            Some(s) if !STATUSES.contains(&s.as_str()) => {
                return Err(ApiError::invalid_field(
                    "status",
                    format!("{s:?} is not a status: one of {}", STATUSES.join(", ")),
                ))
            }
            s => s,
        };
        let site = id_filter("site", self.site, |v| {
            ctx.fleet.sites.iter().any(|s| s.id.as_str() == v)
        })?;
        let store = id_filter("store", self.store, |v| {
            ctx.fleet.stores.iter().any(|s| s.id.as_str() == v)
        })?;
        // A return's merchant need not be configured (`[[merchants]]` is for webhooks): only
        // the shape is checked.
        let merchant = id_filter("merchant", self.merchant, |_| true)?;
        let from_ms = match self.from {
            Some(t) => Some(time_ms("from", &t, false)?),
            None => None,
        };
        let until_ms = match self.to {
            Some(t) => Some(time_ms("to", &t, true)?),
            None => None,
        };
        let sort = match self.sort {
            None => Sort {
                key: SortKey::Created,
                descending: true,
            },
            Some(text) => {
                let (descending, name) = match text.strip_prefix('-') {
                    Some(name) => (true, name),
                    None => (false, text.as_str()),
                };
                let key = SortKey::ALL
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, k)| *k)
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "sort",
                            format!(
                                "{text:?} is not a sort: one of created, rma, status, site, \
                                 merchant, store, each with - first for descending"
                            ),
                        )
                    })?;
                Sort { key, descending }
            }
        };
        let page = number("page", self.page.as_deref(), 1, RETURN_LIST_PAGE_NUMBER_MAX)?;
        let per_page = number(
            "per_page",
            self.per_page.as_deref(),
            RETURN_LIST_PAGE_DEFAULT as u64,
            RETURN_LIST_PAGE_MAX as u64,
        )?;
        Ok(Listing {
            filter: ReturnFilter {
                search,
                status,
                site,
                store,
                merchant,
                from_ms,
                until_ms,
            },
            sort,
            page,
            per_page: usize::try_from(per_page).unwrap_or(RETURN_LIST_PAGE_DEFAULT),
        })
    }
}

/// The query of a request, or a 422 naming what is wrong with it.
pub fn query(q: Result<Query<ListQuery>, QueryRejection>) -> Result<ListQuery, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::invalid_field("query", e.body_text()))
}

/// One return as the list shows it.
#[derive(Serialize, ToSchema)]
pub struct ReturnRow {
    rma: String,
    /// expected, receiving, received, cancelled or expired.
    status: String,
    site: String,
    merchant: Option<String>,
    /// The store it was registered at.
    store: Option<String>,
    order_ref: Option<String>,
    customer_ref: Option<String>,
    customer_name: Option<String>,
    tracking: Option<String>,
    /// refund, store_credit or exchange.
    resolution: Option<String>,
    /// What its lines are worth, in yen.
    value_yen: Option<i64>,
    /// When it was registered (RFC 3339).
    created_at: Option<String>,
}

impl From<ListedReturn> for ReturnRow {
    fn from(r: ListedReturn) -> Self {
        Self {
            created_at: rfc3339(r.created_ms),
            rma: r.rma,
            status: r.status,
            site: r.site,
            merchant: r.merchant,
            store: r.store,
            order_ref: r.order_ref,
            customer_ref: r.customer_ref,
            customer_name: r.customer_name,
            tracking: r.tracking,
            resolution: r.resolution,
            value_yen: r.value_yen,
        }
    }
}

/// A page of the list.
#[derive(Serialize, ToSchema)]
pub struct ReturnList {
    returns: Vec<ReturnRow>,
    /// This page's number, from 1.
    page: u64,
    per_page: usize,
    /// Returns matching the query on every page.
    total: u64,
}

/// The page a checked query asks for.
pub async fn page(ctx: &Ctx, listing: Listing) -> Result<ReturnList, ApiError> {
    let offset = (listing.page - 1) * listing.per_page as u64;
    let (filter, sort, per_page) = (listing.filter, listing.sort, listing.per_page);
    let found = ctx
        .db
        .call(move |c| return_list::list(c, &filter, sort, offset, per_page))
        .await?;
    Ok(ReturnList {
        returns: found.rows.into_iter().map(ReturnRow::from).collect(),
        page: listing.page,
        per_page: listing.per_page,
        total: found.n_total,
    })
}

/// Every row a checked query matches (from its first, up to [`RETURN_EXPORT_ROWS_MAX`]) as a
/// CSV download, with the number matched in `x-total-count`.
pub async fn export(ctx: &Ctx, listing: Listing) -> Result<Response, ApiError> {
    let (filter, sort) = (listing.filter, listing.sort);
    let found = ctx
        .db
        .call(move |c| return_list::list(c, &filter, sort, 0, RETURN_EXPORT_ROWS_MAX))
        .await?;
    let text = return_list::csv(&found.rows, |ms| rfc3339(ms).unwrap_or_default());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"modori-returns.csv\"".to_owned(),
            ),
            (
                header::HeaderName::from_static("x-total-count"),
                found.n_total.to_string(),
            ),
        ],
        text,
    )
        .into_response())
}

/// A merchant key lists its own returns, a store key those registered at it; ops all.
fn scoped(caller: &Caller, mut listing: Listing) -> Result<Listing, ApiError> {
    match &caller.scope {
        Scope::Ops => {}
        Scope::Merchant(m) => {
            if listing
                .filter
                .merchant
                .as_deref()
                .is_some_and(|v| v != m.as_str())
            {
                return Err(ApiError::forbidden(format!(
                    "API key {} lists only the returns of merchant {m}",
                    caller.key_id
                )));
            }
            listing.filter.merchant = Some(m.to_string());
        }
        Scope::Store(s) => {
            if listing
                .filter
                .store
                .as_deref()
                .is_some_and(|v| v != s.as_str())
            {
                return Err(ApiError::forbidden(format!(
                    "API key {} lists only the returns of store {s}",
                    caller.key_id
                )));
            }
            listing.filter.store = Some(s.to_string());
        }
    }
    Ok(listing)
}

/// Returns matching a search and filters, a page at a time, newest first unless `sort` says.
/// A merchant key sees only its returns, a store key those registered at it.
#[utoipa::path(get, path = "/api/v1/returns", tag = "returns", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = ReturnList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Another merchant's or store's returns", body = ErrorBody),
        (status = 404, description = "No such site or store", body = ErrorBody),
        (status = 422, description = "A query value that is not valid, named", body = ErrorBody)))]
pub async fn list_returns(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ReturnList>, ApiError> {
    let listing = scoped(&caller, query(q)?.checked(&ctx)?)?;
    Ok(Json(page(&ctx, listing).await?))
}

/// The same list as CSV, every page (up to 10,000 rows, `RETURN_EXPORT_ROWS_MAX`; the
/// `x-total-count` header says how many matched): `rma,status,site,merchant,store,order_ref,
/// customer_ref,customer_name,tracking,resolution,value_yen,created`. `page` and `per_page`
/// are checked and otherwise ignored.
#[utoipa::path(get, path = "/api/v1/returns.csv", tag = "returns", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Another merchant's or store's returns", body = ErrorBody),
        (status = 404, description = "No such site or store", body = ErrorBody),
        (status = 422, description = "A query value that is not valid, named", body = ErrorBody)))]
pub async fn export_returns(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let listing = scoped(&caller, query(q)?.checked(&ctx)?)?;
    export(&ctx, listing).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_in_a_query_is_a_day_in_japan() {
        let start = time_ms("from", "2026-01-02", false).unwrap();
        let end = time_ms("to", "2026-01-02", true).unwrap();
        let utc = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        };
        assert_eq!(start, utc("2026-01-01T15:00:00Z"));
        assert_eq!(end, utc("2026-01-02T15:00:00Z"));
        let e = time_ms("from", "02/01/2026", false).unwrap_err();
        assert_eq!(e.status().as_u16(), 422);
    }

    #[test]
    fn page_numbers_are_bounded_and_named() {
        assert_eq!(number("page", None, 1, 10).unwrap(), 1);
        assert_eq!(number("page", Some("10"), 1, 10).unwrap(), 10);
        for bad in ["0", "11", "-1", "1.5", "x"] {
            assert!(number("page", Some(bad), 1, 10).is_err(), "{bad}");
        }
    }
}
