//! Customer status events to merchants' webhooks: signing, verification, retry timing and one
//! delivery over HTTP/1.1 (https with the Mozilla root store).
//!
//! Signature: `Modori-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with
//! the merchant's secret. A receiver recomputes it and refuses a timestamp older than its
//! tolerance, so a captured delivery cannot be replayed later ([`verify`] is that check).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use thiserror::Error;
use tokio::net::TcpStream;

pub use crate::merchants::MerchantEntry;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Modori-Signature";
/// How old a signed timestamp a receiver should accept, in seconds.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;
/// Longest a delivery may take, connection included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays double from the first to the cap; a merchant's endpoint down for a day is
/// retried hourly and gets everything, in order, once it is back.
pub const RETRY_FIRST: Duration = Duration::from_secs(2);
pub const RETRY_CAP: Duration = Duration::from_secs(3600);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("no {SIGNATURE_HEADER} header")]
    Missing,
    #[error("{SIGNATURE_HEADER} is not t=<seconds>,v1=<hex>")]
    Malformed,
    #[error("signed {age_s} s ago, beyond the {SIGNATURE_TOLERANCE_S} s tolerance")]
    Stale { age_s: i64 },
    #[error("signature does not match the body")]
    Mismatch,
}

#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error("webhook URL {0:?}: expected http://host[:port]/path or https://…")]
    Url(String),
    #[error("connecting to {host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {host}: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("no answer within {DELIVERY_TIMEOUT:?}")]
    Timeout,
    #[error("the endpoint answered {0}")]
    Status(u16),
}

fn mac(secret: &str, timestamp_s: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` sent at `timestamp_s`.
pub fn sign(secret: &str, timestamp_s: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp_s, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp_s},v1={hex}")
}

/// What a receiver does: checks the header against the body and the clock.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now_s: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    if v1.len() != 64 || !v1.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed);
    }
    let age_s = now_s - t;
    if age_s.abs() > SIGNATURE_TOLERANCE_S {
        return Err(SignatureError::Stale { age_s });
    }
    let expected: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&v1[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    mac(secret, t, body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The delay before attempt number `attempt` (1 = the first retry).
pub fn retry_delay(attempt: u32) -> Duration {
    let factor = 2u64.saturating_pow(attempt.saturating_sub(1).min(32));
    RETRY_FIRST
        .saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX))
        .min(RETRY_CAP)
}

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, DeliveryError> {
    let bad = || DeliveryError::Url(url.chars().take(200).collect());
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (authority, if tls { 443 } else { 80 }),
    };
    if host.is_empty() || host.contains('@') {
        return Err(bad());
    }
    Ok(Target {
        tls,
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    })
}

/// Checks a webhook URL when it is configured, so a typo is found at start.
pub fn check_url(url: &str) -> Result<(), DeliveryError> {
    parse_url(url).map(|_| ())
}

/// Posts `body` (JSON) to `url`, signed with `secret` at `timestamp_s`. A 2xx answer is a
/// delivery; anything else is an error to retry.
pub async fn deliver(
    url: &str,
    secret: &str,
    body: Vec<u8>,
    timestamp_s: i64,
) -> Result<u16, DeliveryError> {
    let signature = sign(secret, timestamp_s, &body);
    post_json(url, &[(SIGNATURE_HEADER, signature)], body).await
}

/// Posts `body` (JSON) to `url` with `headers`, within [`DELIVERY_TIMEOUT`]. A 2xx answer is
/// success; anything else an error (the status is kept).
pub async fn post_json(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<u16, DeliveryError> {
    let target = parse_url(url)?;
    tokio::time::timeout(DELIVERY_TIMEOUT, post(&target, headers, body))
        .await
        .map_err(|_| DeliveryError::Timeout)?
}

async fn post(
    target: &Target,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<u16, DeliveryError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|source| DeliveryError::Connect {
            host: target.host.clone(),
            source,
        })?;
    let host_header = if (target.tls && target.port == 443) || (!target.tls && target.port == 80) {
        target.host.clone()
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let mut request = hyper::Request::post(&target.path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    if target.tls {
        let server_name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| DeliveryError::Url(target.host.clone()))?;
        let tls = tls_connector()
            .connect(server_name, tcp)
            .await
            .map_err(|source| DeliveryError::Tls {
                host: target.host.clone(),
                source,
            })?;
        send(TokioIo::new(tls), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
}

async fn send<I>(io: I, request: hyper::Request<Full<Bytes>>) -> Result<u16, DeliveryError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    // Read the answer to its end so the connection closes cleanly; its content is not used.
    let _ = response.into_body().collect().await;
    driver.abort();
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(DeliveryError::Status(status))
    }
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| b.with_root_certificates(roots).with_no_client_auth())
    .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"));
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_tampering_or_replay_is_refused() {
        let body = br#"{"event":"received"}"#;
        let header = sign("s3cret", 1_790_000_000, body);
        assert!(header.starts_with("t=1790000000,v1="), "{header}");
        assert_eq!(verify("s3cret", Some(&header), body, 1_790_000_100), Ok(()));
        assert_eq!(
            verify(
                "s3cret",
                Some(&header),
                br#"{"event":"refunded"}"#,
                1_790_000_100
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other", Some(&header), body, 1_790_000_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", Some(&header), body, 1_790_001_000),
            Err(SignatureError::Stale { age_s: 1000 })
        );
        assert_eq!(
            verify("s3cret", None, body, 0),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify("s3cret", Some("t=1,v1=zz"), body, 1),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn retries_back_off_to_the_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(2));
        assert_eq!(retry_delay(2), Duration::from_secs(4));
        assert_eq!(retry_delay(5), Duration::from_secs(32));
        assert_eq!(retry_delay(40), RETRY_CAP);
    }

    #[tokio::test]
    async fn a_delivery_reaches_the_endpoint_signed_and_an_error_answer_is_an_error() {
        use axum::http::{HeaderMap, StatusCode};
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let seen_tx = seen_tx.clone();
                async move {
                    let signature = headers
                        .get(SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let _ = seen_tx.send((signature, body.to_vec()));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}/hooks");
        let status = deliver(&url, "s3cret", b"{\"n\":1}".to_vec(), 1_790_000_000)
            .await
            .unwrap();
        assert_eq!(status, 204);
        let (signature, body) = seen_rx.recv().await.unwrap();
        assert_eq!(body, b"{\"n\":1}");
        assert_eq!(
            verify("s3cret", signature.as_deref(), &body, 1_790_000_001),
            Ok(())
        );
        let missing = format!("http://{addr}/nowhere");
        assert!(matches!(
            deliver(&missing, "s3cret", b"{}".to_vec(), 0).await,
            Err(DeliveryError::Status(404))
        ));
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("http://127.0.0.1:8080/hooks").is_ok());
        assert!(check_url("https://shop.example.jp/modori").is_ok());
        for bad in [
            "ftp://x",
            "http://",
            "https://user@host/",
            "http://host:99999/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
