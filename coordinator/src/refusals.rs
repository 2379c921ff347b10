//! Connections refused before they become a site's link: why (a closed set, so the metric's
//! label set stays bounded whatever a stranger sends) and a log that cannot be flooded.
//!
//! Why: a certificate from another CA or a client without one fails inside the TLS handshake,
//! where nothing else sees it; an operator must be able to tell "this site cannot get in" from
//! "this site is down" without turning on debug logs.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::warn;

/// At most one log line per reason in this interval; the lines in between are counted and the
/// next line says how many were left out (the metric counts every one).
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// TLS alert codes (RFC 8446 §6.2) that quinn reports as `0x100 + alert`.
const ALERT_BAD_CERTIFICATE: u8 = 42;
const ALERT_CERTIFICATE_REVOKED: u8 = 44;
const ALERT_CERTIFICATE_EXPIRED: u8 = 45;
const ALERT_UNKNOWN_CA: u8 = 48;
const ALERT_DECRYPT_ERROR: u8 = 51;
const ALERT_CERTIFICATE_REQUIRED: u8 = 116;
const QUIC_CRYPTO_ERROR_BASE: u64 = 0x100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The client certificate is not signed by the fleet CA (an unknown issuer, or one with the
    /// fleet CA's name whose signature does not verify).
    UnknownCa,
    /// The client presented no certificate.
    NoCertificate,
    /// The certificate (or its site) is on the revocation list.
    Revoked,
    Expired,
    /// Any other certificate problem (bad signature, wrong usage, unparsable).
    BadCertificate,
    /// Another TLS failure (no common protocol version or ALPN, a broken handshake).
    Tls,
    /// The handshake did not finish in time.
    TimedOut,
    /// A verified certificate names a site that is not in the fleet.
    UnknownSite,
    /// A verified certificate whose common name is not a site id.
    BadIdentity,
    /// A hello asking for a protocol version this coordinator does not speak.
    ProtocolVersion,
    /// The peer went away or something else failed before the link was up.
    Other,
}

impl Refusal {
    pub const ALL: [Refusal; 11] = [
        Refusal::UnknownCa,
        Refusal::NoCertificate,
        Refusal::Revoked,
        Refusal::Expired,
        Refusal::BadCertificate,
        Refusal::Tls,
        Refusal::TimedOut,
        Refusal::UnknownSite,
        Refusal::BadIdentity,
        Refusal::ProtocolVersion,
        Refusal::Other,
    ];

    /// The metric label and log field.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownCa => "unknown_ca",
            Refusal::NoCertificate => "no_certificate",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
            Refusal::BadCertificate => "bad_certificate",
            Refusal::Tls => "tls",
            Refusal::TimedOut => "timed_out",
            Refusal::UnknownSite => "unknown_site",
            Refusal::BadIdentity => "bad_identity",
            Refusal::ProtocolVersion => "protocol_version",
            Refusal::Other => "other",
        }
    }

    /// Why a handshake failed, from the TLS alert our side sent.
    pub fn of_handshake(error: &quinn::ConnectionError) -> Self {
        match error {
            quinn::ConnectionError::TransportError(e) => {
                Self::of_transport_error(e.code.into(), &e.reason)
            }
            quinn::ConnectionError::TimedOut => Refusal::TimedOut,
            _ => Refusal::Other,
        }
    }

    /// `reason` is rustls' message, which tells a certificate whose signature does not verify
    /// apart from other decrypt errors.
    fn of_transport_error(code: u64, reason: &str) -> Self {
        if !(QUIC_CRYPTO_ERROR_BASE..QUIC_CRYPTO_ERROR_BASE + 0x100).contains(&code) {
            return Refusal::Tls;
        }
        match (code - QUIC_CRYPTO_ERROR_BASE) as u8 {
            ALERT_UNKNOWN_CA => Refusal::UnknownCa,
            // A CA with the fleet CA's name but another key: not signed by the fleet CA.
            ALERT_DECRYPT_ERROR if reason.contains("invalid peer certificate: BadSignature") => {
                Refusal::UnknownCa
            }
            ALERT_CERTIFICATE_REQUIRED => Refusal::NoCertificate,
            ALERT_CERTIFICATE_REVOKED => Refusal::Revoked,
            ALERT_CERTIFICATE_EXPIRED => Refusal::Expired,
            ALERT_BAD_CERTIFICATE => Refusal::BadCertificate,
            _ => Refusal::Tls,
        }
    }
}

/// Rate limit of the refusal log, per reason.
#[derive(Debug)]
pub struct RefusalLog {
    /// Per reason (index in [`Refusal::ALL`]): when a line was last written, and how many
    /// refusals were left out since.
    last: Mutex<[(Option<Instant>, u64); Refusal::ALL.len()]>,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self::new()
    }
}

impl RefusalLog {
    pub const fn new() -> Self {
        Self {
            last: Mutex::new([(None, 0); Refusal::ALL.len()]),
        }
    }

    /// Logs the refusal unless the reason was logged less than [`REFUSAL_LOG_INTERVAL`] ago.
    pub fn refused(&self, now: Instant, peer: SocketAddr, reason: Refusal, detail: &str) {
        let Some(n_left_out) = self.admit(now, reason) else {
            return;
        };
        warn!(%peer, reason = reason.as_str(), detail, n_left_out, "refused a connection");
    }

    /// `Some(n_left_out)` when a line is due.
    fn admit(&self, now: Instant, reason: Refusal) -> Option<u64> {
        let index = Refusal::ALL.iter().position(|r| *r == reason)?;
        let mut last = self.last.lock().ok()?;
        let (at, n_left_out) = &mut last[index];
        if at.is_some_and(|at| now.duration_since(at) < REFUSAL_LOG_INTERVAL) {
            *n_left_out += 1;
            return None;
        }
        *at = Some(now);
        Some(std::mem::take(n_left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crypto(alert: u8) -> Refusal {
        Refusal::of_transport_error(quinn::TransportErrorCode::crypto(alert).into(), "")
    }

    #[test]
    fn tls_alerts_map_to_their_reasons() {
        assert_eq!(crypto(48), Refusal::UnknownCa);
        assert_eq!(crypto(116), Refusal::NoCertificate);
        assert_eq!(crypto(44), Refusal::Revoked);
        assert_eq!(crypto(70), Refusal::Tls);
        assert_eq!(
            crypto(51),
            Refusal::Tls,
            "a decrypt error, not a certificate's"
        );
        let forged = Refusal::of_transport_error(
            quinn::TransportErrorCode::crypto(51).into(),
            "invalid peer certificate: BadSignature",
        );
        assert_eq!(forged, Refusal::UnknownCa);
        assert_eq!(Refusal::of_transport_error(0x0a, ""), Refusal::Tls);
        assert_eq!(
            Refusal::of_handshake(&quinn::ConnectionError::TimedOut),
            Refusal::TimedOut
        );
    }

    #[test]
    fn one_line_per_reason_per_interval_then_the_count_left_out() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0, Refusal::UnknownCa), Some(0));
        assert_eq!(log.admit(t0, Refusal::UnknownCa), None);
        assert_eq!(log.admit(t0, Refusal::UnknownCa), None);
        assert_eq!(
            log.admit(t0, Refusal::NoCertificate),
            Some(0),
            "reasons are limited apart"
        );
        assert_eq!(
            log.admit(t0 + REFUSAL_LOG_INTERVAL, Refusal::UnknownCa),
            Some(2)
        );
    }
}
