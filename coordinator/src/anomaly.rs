//! The kinds of anomaly the coordinator records: an op or a link that was wrong. Inside they
//! are an enum; the `anomalies` table and the API carry the name (`as_str`, `FromStr`).

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// A seq arrived again with another payload than the one applied.
    HashMismatch,
    /// An op whose payload does not decode.
    Undecodable,
    /// An op naming another site than its connection's certificate.
    Impersonation,
    /// A site moved a quarantined unit on.
    QuarantineBreached,
    /// A receipt against a return routed to another site.
    ReturnNotRoutedHere,
    /// A receipt of a SKU its return does not list.
    WrongItem,
    /// More than a return's quantity, after its parcel closed.
    OverAfterClose,
    /// A receipt against a return closed already (cancelled, expired).
    ClosedReturnReceived,
    /// A unit move its state does not allow.
    InvalidTransition,
    /// A unit's departure without what it needs (grade, disposition, receipt).
    IncompleteUnit,
    UnknownReturn,
    UnknownTote,
    /// An LPN received twice.
    DuplicateLpn,
    /// A site's database went back in time.
    DatabaseRewound,
    /// A hello naming another site than the certificate.
    HelloSiteMismatch,
    /// A site applied commands this coordinator's database no longer holds: the database went
    /// back in time, and the site gets its whole command stream again.
    CoordinatorRewound,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 16] = [
        AnomalyKind::HashMismatch,
        AnomalyKind::Undecodable,
        AnomalyKind::Impersonation,
        AnomalyKind::QuarantineBreached,
        AnomalyKind::ReturnNotRoutedHere,
        AnomalyKind::WrongItem,
        AnomalyKind::OverAfterClose,
        AnomalyKind::ClosedReturnReceived,
        AnomalyKind::InvalidTransition,
        AnomalyKind::IncompleteUnit,
        AnomalyKind::UnknownReturn,
        AnomalyKind::UnknownTote,
        AnomalyKind::DuplicateLpn,
        AnomalyKind::DatabaseRewound,
        AnomalyKind::HelloSiteMismatch,
        AnomalyKind::CoordinatorRewound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HashMismatch => "hash_mismatch",
            Self::Undecodable => "undecodable",
            Self::Impersonation => "impersonation",
            Self::QuarantineBreached => "quarantine_breached",
            Self::ReturnNotRoutedHere => "return_not_routed_here",
            Self::WrongItem => "wrong_item",
            Self::OverAfterClose => "over_after_close",
            Self::ClosedReturnReceived => "closed_return_received",
            Self::InvalidTransition => "invalid_transition",
            Self::IncompleteUnit => "incomplete_unit",
            Self::UnknownReturn => "unknown_return",
            Self::UnknownTote => "unknown_tote",
            Self::DuplicateLpn => "duplicate_lpn",
            Self::DatabaseRewound => "database_rewound",
            Self::HelloSiteMismatch => "hello_site_mismatch",
            Self::CoordinatorRewound => "coordinator_rewound",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AnomalyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown anomaly kind {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in AnomalyKind::ALL {
            assert_eq!(kind.as_str().parse::<AnomalyKind>(), Ok(kind));
        }
        assert!("gremlins".parse::<AnomalyKind>().is_err());
    }
}
