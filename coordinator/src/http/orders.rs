//! Merchants' orders: what the commerce system sold, so a store counter without a POS
//! integration can look a customer's order up and take its items back, and how its customer
//! is reached about their returns. Ops keys, or the merchant's own.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use modori_shared::domain::{MerchantId, Sku};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::ops::CUSTOMER_REF_CHARS_MAX;
use super::rfc3339;
use crate::store::orders::{
    self, Contact, Order, OrderLine, ORDERS_PER_REQUEST_MAX, ORDER_LINES_MAX, ORDER_REF_BYTES_MAX,
};
use crate::Ctx;

/// Most units of one line of an order.
pub const ORDER_LINE_QTY_MAX: u32 = 10_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrdersRequest {
    /// 1 to 1,000 orders (`ORDERS_PER_REQUEST_MAX`).
    #[schema(min_items = 1, max_items = 1000)]
    orders: Vec<OrderEntry>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderEntry {
    /// The commerce system's order reference (printable ASCII, no spaces, 1-64 bytes).
    #[serde(rename = "ref")]
    #[schema(pattern = "^[!-~]{1,64}$")]
    reference: String,
    /// The commerce system's customer reference (personal data: pseudonymised with the
    /// customer's returns): 1 to 64 characters, not starting with `anon-`.
    #[serde(default)]
    #[schema(pattern = "^(?!anon-)[\\s\\S]{1,64}$")]
    customer_ref: Option<String>,
    /// When the order was placed (RFC 3339): the return window counts from it.
    #[schema(format = DateTime)]
    ordered_at: String,
    /// 1 to 100 lines (`ORDER_LINES_MAX`).
    #[schema(min_items = 1, max_items = 100)]
    lines: Vec<OrderLineEntry>,
    /// How the customer is reached about their returns (personal data: erased with the
    /// customer). Without it, no message is sent about the order's returns.
    #[serde(default)]
    contact: Option<ContactEntry>,
}

/// The customer's contact on an order.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactEntry {
    /// The address messages are emailed to (ASCII: a local part, `@`, a domain).
    #[schema(
        pattern = "^[A-Za-z0-9_%+-]{1,32}(\\.[A-Za-z0-9_%+-]{1,16})?@[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?){0,3}\\.[A-Za-z]{2,16}$"
    )]
    email: String,
    /// Digits with optional `+` first and `-` between, 7 to 20 characters (`090-1234-5678`,
    /// `+819012345678`).
    #[schema(pattern = "^\\+?[0-9][0-9-]{5,18}[0-9]$")]
    phone: String,
    /// The customer's LINE user id (`U` and 32 hex digits), when they linked the merchant's LINE
    /// account: messages go there instead of email.
    #[serde(default)]
    #[schema(pattern = "^U[0-9a-f]{32}$")]
    line_user_id: Option<String>,
    /// The language messages are written in. Default `ja`.
    #[serde(default)]
    language: Option<ContactLanguage>,
}

#[derive(Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContactLanguage {
    Ja,
    En,
}

impl ContactLanguage {
    fn as_str(self) -> &'static str {
        match self {
            ContactLanguage::Ja => "ja",
            ContactLanguage::En => "en",
        }
    }
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineEntry {
    #[schema(pattern = "^[A-Z0-9._-]{1,64}$")]
    sku: String,
    /// 1 to 10,000 (`ORDER_LINE_QTY_MAX`).
    #[schema(minimum = 1, maximum = 10_000)]
    qty: u32,
}

/// Whether `s` is an email address of the shape the document gives (what every SMTP server
/// takes, without quoting or international forms).
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let atom = |p: &str, max: usize| {
        (1..=max).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'%' | b'+' | b'-'))
    };
    let local_ok = match local.split_once('.') {
        Some((a, b)) => atom(a, 32) && atom(b, 16),
        None => atom(local, 32),
    };
    let labels: Vec<&str> = domain.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else {
        return false;
    };
    let label_ok = |l: &str| {
        (1..=32).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    local_ok
        && (1..=4).contains(&rest.len())
        && rest.iter().all(|l| label_ok(l))
        && (2..=16).contains(&tld.len())
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Whether `s` is a phone number of the shape the document gives.
pub fn valid_phone(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (7..=20).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && digits.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && digits.bytes().last().is_some_and(|b| b.is_ascii_digit())
}

/// Whether `s` is a LINE user id: `U` and 32 lowercase hex digits.
pub fn valid_line_user_id(s: &str) -> bool {
    s.len() == 33
        && s.starts_with('U')
        && s[1..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn contact(i: usize, c: ContactEntry) -> Result<Contact, ApiError> {
    let field = |f: &str| format!("orders[{i}].contact.{f}");
    if !valid_email(&c.email) {
        return Err(ApiError::invalid_field(
            field("email"),
            "not an email address this service can write to (local@domain.tld, ASCII)",
        ));
    }
    if !valid_phone(&c.phone) {
        return Err(ApiError::invalid_field(
            field("phone"),
            "must be 7-20 digits, optionally + first and - between digits",
        ));
    }
    if let Some(id) = &c.line_user_id {
        if !valid_line_user_id(id) {
            return Err(ApiError::invalid_field(
                field("line_user_id"),
                "must be U followed by 32 lowercase hex digits",
            ));
        }
    }
    Ok(Contact {
        email: c.email,
        phone: c.phone,
        line_user_id: c.line_user_id,
        language: c
            .language
            .unwrap_or(ContactLanguage::Ja)
            .as_str()
            .to_owned(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct OrdersStored {
    merchant: String,
    n_orders: usize,
}

/// Whether `s` can be an order reference.
pub fn valid_order_ref(s: &str) -> bool {
    !s.is_empty() && s.len() <= ORDER_REF_BYTES_MAX && s.bytes().all(|b| b.is_ascii_graphic())
}

fn order(merchant: &MerchantId, i: usize, e: OrderEntry) -> Result<Order, ApiError> {
    let field = |f: &str| format!("orders[{i}].{f}");
    if !valid_order_ref(&e.reference) {
        return Err(ApiError::invalid_field(
            field("ref"),
            format!("must be 1..={ORDER_REF_BYTES_MAX} bytes of printable ASCII, no spaces"),
        ));
    }
    if let Some(c) = &e.customer_ref {
        if c.is_empty() || c.chars().count() > CUSTOMER_REF_CHARS_MAX || c.starts_with("anon-") {
            return Err(ApiError::invalid_field(
                field("customer_ref"),
                format!("must be 1..={CUSTOMER_REF_CHARS_MAX} characters and not start with anon-"),
            ));
        }
    }
    let ordered_ms = chrono::DateTime::parse_from_rfc3339(&e.ordered_at)
        .map_err(|err| {
            ApiError::invalid_field(field("ordered_at"), format!("not RFC 3339: {err}"))
        })?
        .timestamp_millis();
    if e.lines.is_empty() || e.lines.len() > ORDER_LINES_MAX {
        return Err(ApiError::invalid_field(
            field("lines"),
            format!("must hold 1..={ORDER_LINES_MAX} lines"),
        ));
    }
    let lines = e
        .lines
        .into_iter()
        .enumerate()
        .map(|(j, l)| {
            let sku = Sku::new(l.sku)
                .map_err(|err| ApiError::invalid_field(field(&format!("lines[{j}].sku")), err))?;
            if l.qty == 0 || l.qty > ORDER_LINE_QTY_MAX {
                return Err(ApiError::invalid_field(
                    field(&format!("lines[{j}].qty")),
                    format!("must be 1..={ORDER_LINE_QTY_MAX}"),
                ));
            }
            Ok(OrderLine {
                sku: sku.to_string(),
                qty: l.qty,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let contact = e.contact.map(|c| contact(i, c)).transpose()?;
    Ok(Order {
        merchant: merchant.to_string(),
        order_ref: e.reference,
        customer_ref: e.customer_ref,
        ordered_ms,
        lines,
        contact,
    })
}

fn merchant_param(merchant: String) -> Result<MerchantId, ApiError> {
    MerchantId::new(merchant).map_err(|e| ApiError::invalid_path("merchant", e))
}

/// Stores orders of a merchant (an order with a known reference is replaced).
#[utoipa::path(put, path = "/api/v1/orders/{merchant}", tag = "orders", security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$")),
    request_body = OrdersRequest,
    responses(
        (status = 200, body = OrdersStored),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_orders(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(merchant): ApiPath<String>,
    ApiJson(req): ApiJson<OrdersRequest>,
) -> Result<Json<OrdersStored>, ApiError> {
    let merchant = merchant_param(merchant)?;
    caller.require_merchant(&merchant)?;
    if req.orders.is_empty() || req.orders.len() > ORDERS_PER_REQUEST_MAX {
        return Err(ApiError::invalid_field(
            "orders",
            format!("must hold 1..={ORDERS_PER_REQUEST_MAX} orders"),
        ));
    }
    let parsed = req
        .orders
        .into_iter()
        .enumerate()
        .map(|(i, e)| order(&merchant, i, e))
        .collect::<Result<Vec<_>, _>>()?;
    let m = merchant.clone();
    let now_ms = ctx.clock.now_ms();
    let n_orders = ctx
        .db
        .call(move |c| orders::put_orders(c, m.as_str(), &parsed, now_ms))
        .await?;
    tracing::info!(merchant = %merchant, n_orders, key_id = %caller.key_id, "orders stored");
    Ok(Json(OrdersStored {
        merchant: merchant.to_string(),
        n_orders,
    }))
}

/// One order as stored.
#[derive(Serialize, ToSchema)]
pub struct OrderView {
    merchant: String,
    #[serde(rename = "ref")]
    reference: String,
    customer_ref: Option<String>,
    ordered_at: Option<String>,
    lines: Vec<OrderLineEntry>,
    /// Absent when none was given, or the customer was erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<ContactEntry>,
}

/// A stored contact as the API shows it.
pub(super) fn contact_entry(c: Contact) -> ContactEntry {
    ContactEntry {
        language: Some(if c.language == "en" {
            ContactLanguage::En
        } else {
            ContactLanguage::Ja
        }),
        email: c.email,
        phone: c.phone,
        line_user_id: c.line_user_id,
    }
}

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        Self {
            merchant: o.merchant,
            reference: o.order_ref,
            customer_ref: o.customer_ref,
            ordered_at: rfc3339(o.ordered_ms),
            lines: o
                .lines
                .into_iter()
                .map(|l| OrderLineEntry {
                    sku: l.sku,
                    qty: l.qty,
                })
                .collect(),
            contact: o.contact.map(contact_entry),
        }
    }
}

/// One order of a merchant.
#[utoipa::path(get, path = "/api/v1/orders/{merchant}/{reference}", tag = "orders", security(("bearer" = [])),
    params(("merchant" = String, Path, description = "The merchant id (a-z 0-9 -)", pattern = "^[a-z0-9-]{1,64}$"),
           ("reference" = String, Path, description = "The order reference", pattern = "^[!-~]{1,64}$")),
    responses(
        (status = 200, body = OrderView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_order(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((merchant, reference)): ApiPath<(String, String)>,
) -> Result<Json<OrderView>, ApiError> {
    let merchant = merchant_param(merchant)?;
    caller.require_merchant(&merchant)?;
    if !valid_order_ref(&reference) {
        return Err(ApiError::invalid_path(
            "reference",
            format!("must be 1..={ORDER_REF_BYTES_MAX} bytes of printable ASCII"),
        ));
    }
    let (m, r) = (merchant.clone(), reference.clone());
    let found = ctx.db.call(move |c| orders::get(c, m.as_str(), &r)).await?;
    let order = found.ok_or_else(|| {
        ApiError::not_found(format!("no order {reference} of merchant {merchant}"))
    })?;
    Ok(Json(order.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_checked_as_the_document_describes() {
        for ok in [
            "hanako@example.jp",
            "h.yamada+returns@mail.example.co.jp",
            "A_1%x@sub-1.example.com",
        ] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "hanako",
            "@example.jp",
            "a..b@example.jp",
            "a@b@example.jp",
            "a@example",
            "a@-x.jp",
            "a@example.j",
            "花子@example.jp",
            "a b@example.jp",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
        for ok in ["090-1234-5678", "+819012345678", "0312345678"] {
            assert!(valid_phone(ok), "{ok}");
        }
        for bad in [
            "123456",
            "-0901234567",
            "0901234567-",
            "090 1234 5678",
            "++81901234567",
        ] {
            assert!(!valid_phone(bad), "{bad}");
        }
        assert!(valid_line_user_id("U0123456789abcdef0123456789abcdef"));
        assert!(!valid_line_user_id("U0123456789ABCDEF0123456789abcdef"));
        assert!(!valid_line_user_id("u0123456789abcdef0123456789abcdef"));
    }
}
