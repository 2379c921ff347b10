//! Every error the API answers is JSON:
//! `{"error": {"status": 422, "code": "invalid_field", "field": "lines[0].qty", "message": "…"}}`.
//!
//! Handlers return [`ApiError`]; [`ApiJson`] and [`ApiPath`] replace axum's extractors, whose
//! rejections are plain text, and name the field that is wrong (through
//! `serde_path_to_error`); [`json_errors`] turns what axum answers by itself (wrong method, a
//! body over the limit) into the same shape. Bad input is a 4xx, never a 5xx: a 5xx means the
//! coordinator failed, and its detail goes to the log, not to the caller.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use crate::CoordinatorError;

/// Largest request body accepted, in bytes. The largest legitimate body is a catalogue of
/// `CATALOG_ITEMS_PER_REQUEST_MAX` (20 000) items at about 150 bytes each.
pub const API_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Longest error message answered, in bytes: serde's messages quote the offending value, which
/// may be most of a 4 MiB body.
pub const ERROR_MESSAGE_BYTES_MAX: usize = 512;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated.
    pub status: u16,
    /// Stable, for programs: `invalid_json`, `invalid_field`, `invalid_path`,
    /// `unsupported_media_type`, `body_too_large`, `unauthorized`, `forbidden`, `not_found`,
    /// `route_not_found`, `method_not_allowed`, `conflict`, `internal`, `unavailable`.
    pub code: String,
    /// The JSON path (`lines[0].qty`) or path parameter (`rma`) that is wrong, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For people.
    pub message: String,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            field: None,
            message: truncated(message.into()),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(truncated(field.into()));
        self
    }

    /// A well-formed body with a wrong value (422), naming it.
    pub fn invalid_field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            message.to_string(),
        )
        .with_field(field)
    }

    /// A path parameter that is not a valid value (400), naming it.
    pub fn invalid_path(param: &str, message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_path", message.to_string()).with_field(param)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A well-formed id in the body that names nothing known (404), naming its field.
    pub fn unknown_field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::not_found(message.to_string()).with_field(field)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// The coordinator failed: logged in full, answered without detail.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "HTTP request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the coordinator failed to answer; the detail is in its log",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                status: self.status.as_u16(),
                code: self.code.to_owned(),
                field: self.field.clone(),
                message: self.message.clone(),
            },
        }
    }
}

/// `s` cut to [`ERROR_MESSAGE_BYTES_MAX`] at a character boundary, marked when cut.
fn truncated(mut s: String) -> String {
    if s.len() > ERROR_MESSAGE_BYTES_MAX {
        let mut cut = ERROR_MESSAGE_BYTES_MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<CoordinatorError> for ApiError {
    fn from(e: CoordinatorError) -> Self {
        match e {
            CoordinatorError::Db(modori_runtime::sqlite::DbError::Closed) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the coordinator is stopping",
            ),
            CoordinatorError::Store(e) => e.into(),
            e => Self::internal(&e),
        }
    }
}

impl From<crate::app::AppError> for ApiError {
    fn from(e: crate::app::AppError) -> Self {
        use crate::app::AppError;
        match e {
            AppError::Invalid { field, message } => Self::invalid_field(field, message),
            AppError::Unknown { field, message } => Self::unknown_field(field, message),
            AppError::NotFound(message) => Self::not_found(message),
            AppError::Rejected { field, message } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", message).with_field(field)
            }
            AppError::Exists { field, message } => Self::conflict(message).with_field(field),
            AppError::NoSite(why) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_site",
                format!("no site can take this return today: {why}"),
            ),
            AppError::Internal(message) => Self::internal(&message),
            AppError::Coordinator(e) => e.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Db(modori_runtime::sqlite::DbError::Closed) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the coordinator is stopping",
            ),
            StoreError::Busy(_) => {
                tracing::warn!(error = %e, "database busy");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "the database is busy; try again",
                )
            }
            e => Self::internal(&e),
        }
    }
}

impl From<crate::apikeys::ApiKeyError> for ApiError {
    fn from(e: crate::apikeys::ApiKeyError) -> Self {
        CoordinatorError::from(e).into()
    }
}

/// A JSON request body. Refuses a missing or other content type (415), a body over
/// [`API_BODY_BYTES_MAX`] (413), malformed JSON (400, `invalid_json`) and JSON that does not
/// fit the type (422, `invalid_field` with the path of the value, e.g. `lines[0].qty`).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is over the limit of {API_BODY_BYTES_MAX} bytes"),
    )
}

/// Whether the headers say JSON (`application/json` or `application/…+json`, any parameters).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses a JSON body into `T`, naming the path of whatever does not fit.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = super::integral::whole_numbers_as_integers(bytes);
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    // serde_json's recursion limit (128) stays on: deeply nested input is a 400, not a stack
    // overflow.
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(|e| invalid_json(&e))?;
    Ok(value)
}

fn invalid_json(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        format!("the body is not valid JSON: {e}"),
    )
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let message = inner.to_string();
            let field = field_of(&path, &message);
            let err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message);
            match field {
                Some(f) => err.with_field(f),
                None => err,
            }
        }
        _ => invalid_json(&inner),
    }
}

/// The path of the wrong value. For a missing or duplicate field serde reports the object that
/// holds it, and names the field in the message (between backticks): join the two.
fn field_of(path: &str, message: &str) -> Option<String> {
    let named = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("duplicate field `"))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", None) | ("", None) => None,
        (".", Some(name)) | ("", Some(name)) => Some(name.to_owned()),
        (p, Some(name)) => Some(format!("{p}.{name}")),
        (p, None) => Some(p.to_owned()),
    }
}

/// A path parameter, with a JSON 400 naming it when it does not decode (e.g. bad UTF-8).
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            // A route declared without the parameter it reads: our bug.
            Err(e) if e.status().is_server_error() => Err(ApiError::internal(&e.body_text())),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                e.body_text(),
            )),
        }
    }
}

/// Middleware: an error answer that is not JSON (axum's own: wrong method, body limit, …)
/// becomes JSON with the same status and headers (`Allow` stays).
pub async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    // A page's own refusal (the customer portal's, in HTML for a person) stands as written.
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.headers()) || is_page
    {
        return res;
    }
    let err = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "this route does not take this method; see the Allow header",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::NOT_FOUND => route_not_found(),
        s => ApiError::new(
            s,
            if s.is_server_error() {
                "internal"
            } else {
                "bad_request"
            },
            s.canonical_reason().unwrap_or("error"),
        ),
    };
    let (mut parts, _) = res.into_parts();
    let (json_parts, body) = err.into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &json_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, body)
}

/// The answer for a path no route serves.
pub fn route_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "no such route; the routes are listed in /api/v1/openapi.json",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Only deserialized.
    struct Outer {
        lines: Vec<Line>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Only deserialized.
    struct Line {
        sku: String,
        qty: u32,
    }

    fn err(body: &str) -> ErrorDetail {
        parse_json::<Outer>(body.as_bytes())
            .unwrap_err()
            .body()
            .error
    }

    #[test]
    fn a_wrong_value_is_named_by_its_path() {
        let e = err(r#"{"lines": [{"sku": "A", "qty": -1}]}"#);
        assert_eq!((e.status, e.code.as_str()), (422, "invalid_field"));
        assert_eq!(e.field.as_deref(), Some("lines[0].qty"));
        let e = err(r#"{"lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 99999999999}]}"#);
        assert_eq!(e.field.as_deref(), Some("lines[1].qty"));
        let e = err(r#"{"lines": [{"sku": "A"}]}"#);
        assert_eq!(e.field.as_deref(), Some("lines[0].qty"), "{}", e.message);
        let e = err(r#"{"lines": [], "colour": 1}"#);
        assert_eq!(e.field.as_deref(), Some("colour"), "{}", e.message);
        let e = err(r#"{}"#);
        assert_eq!(e.field.as_deref(), Some("lines"));
        // An integer written with a fraction is refused at its field, as the document says.
        let e = err(r#"{"lines": [{"sku": "A", "qty": 947.5}]}"#);
        assert_eq!((e.status, e.field.as_deref()), (422, Some("lines[0].qty")));
        let e = err(r#"{"lines": [], "lines": []}"#);
        assert_eq!(e.field.as_deref(), Some("lines"), "{}", e.message);
        let e = err(r#"{"lines": [{"sku": "A", "qty": 1, "qty": 2}]}"#);
        assert_eq!(e.field.as_deref(), Some("lines[0].qty"), "{}", e.message);
        let e = err(r#"[]"#);
        assert_eq!((e.status, e.field), (422, None));
        // The offending value is quoted, but not at any length.
        let e = err(&format!(
            r#"{{"lines": [{{"sku": "A", "qty": "{}"}}]}}"#,
            "é".repeat(5000)
        ));
        assert!(
            e.message.len() <= ERROR_MESSAGE_BYTES_MAX + '…'.len_utf8(),
            "{}",
            e.message.len()
        );
        assert_eq!(e.field.as_deref(), Some("lines[0].qty"));
    }

    #[test]
    fn malformed_json_is_a_400() {
        for body in [
            r#"{"lines": "#,
            "",
            "nul",
            r#"{"lines": []} trailing"#,
            "1e99999",
        ] {
            let e = err(body);
            assert_eq!(
                (e.status, e.code.as_str()),
                (400, "invalid_json"),
                "{body}: {}",
                e.message
            );
        }
        // Nesting past serde_json's recursion limit is refused, not a stack overflow.
        let deep = "[".repeat(100_000);
        let e = parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{}", e.message);
    }
}
