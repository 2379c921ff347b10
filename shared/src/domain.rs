//! Domain types: the nouns of DOMAIN.md. Constructors validate, so a value of one of these types
//! is always well formed, whether it came from a config file, a scan or a decoded frame.

use std::fmt;

use thiserror::Error;

/// Longest id (site, store, SKU, RMA, LPN) we accept, in bytes. Keeps every id printable on a
/// label and bounds what one decoded string can cost.
pub const ID_LEN_MAX: usize = 64;

#[derive(Debug, Error, PartialEq)]
pub enum DomainError {
    #[error("{kind} id is empty")]
    EmptyId { kind: &'static str },
    #[error("{kind} id {value:?} is longer than {ID_LEN_MAX} bytes")]
    IdTooLong { kind: &'static str, value: String },
    #[error("{kind} id {value:?} has character {ch:?}; allowed: {allowed}")]
    BadIdChar {
        kind: &'static str,
        value: String,
        ch: char,
        allowed: &'static str,
    },
    #[error("latitude {0} is outside -90..=90")]
    BadLatitude(f64),
    #[error("longitude {0} is outside -180..=180")]
    BadLongitude(f64),
    #[error("quantity must be at least 1, got {0}")]
    BadQuantity(u32),
    #[error("quantity {0} is over the limit of {LINE_QTY_MAX} units a line")]
    QuantityTooLarge(u32),
    #[error("unknown {kind} {value:?}; expected one of {allowed:?}")]
    UnknownName {
        kind: &'static str,
        value: String,
        allowed: &'static [&'static str],
    },
    #[error("unit {lpn}: {event} is not allowed when the unit is {state}")]
    InvalidTransition {
        lpn: String,
        state: &'static str,
        event: &'static str,
    },
}

fn check_id(
    kind: &'static str,
    value: &str,
    allowed: &'static str,
    ok: fn(char) -> bool,
) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::EmptyId { kind });
    }
    if value.len() > ID_LEN_MAX {
        return Err(DomainError::IdTooLong {
            kind,
            value: value.chars().take(ID_LEN_MAX).collect(),
        });
    }
    if let Some(ch) = value.chars().find(|c| !ok(*c)) {
        return Err(DomainError::BadIdChar {
            kind,
            value: value.to_owned(),
            ch,
            allowed,
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $allowed:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, DomainError> {
                let value = value.into();
                check_id($kind, &value, $allowed, $ok)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, DomainError> {
                Self::new(s)
            }
        }
    };
}

fn is_slug_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
}

id_type!(
    /// A warehouse site, e.g. `osaka`. Lowercase so it can be a certificate name and a file name.
    SiteId, "site", "a-z 0-9 -", is_slug_char
);
id_type!(
    /// A store or konbini drop-off point, e.g. `st-shibuya`.
    StoreId, "store", "a-z 0-9 -", is_slug_char
);
id_type!(
    /// A merchant (brand) whose returns we handle.
    MerchantId, "merchant", "a-z 0-9 -", is_slug_char
);
id_type!(
    /// A stock keeping unit of a merchant.
    Sku, "sku", "A-Z 0-9 - _ .", is_code_char
);
id_type!(
    /// A return merchandise authorization, e.g. `RMA-0000123`.
    RmaId, "rma", "A-Z 0-9 - _ .", is_code_char
);
id_type!(
    /// The license plate of one received unit, printed on its label at receiving.
    Lpn, "lpn", "A-Z 0-9 - _ .", is_code_char
);

id_type!(
    /// A tote of store drop-offs consolidated into one shipment, e.g. `TOTE-0123456789-K`.
    ToteId, "tote", "A-Z 0-9 - _ .", is_code_char
);
id_type!(
    /// A storage location at a site (`A0103`), as printed on its BIN label.
    Bin, "bin", "A-Z 0-9", is_bin_char
);

fn is_bin_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// A database's identity. Made at random when a database is created, so a site restored from a
/// backup or reinstalled numbers its ops in a new space and never collides with what it sent
/// before. Sequence numbers are only meaningful together with their epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coordinates {
    lat: f64,
    lon: f64,
}

impl Coordinates {
    pub fn new(lat: f64, lon: f64) -> Result<Self, DomainError> {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(DomainError::BadLatitude(lat));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(DomainError::BadLongitude(lon));
        }
        Ok(Self { lat, lon })
    }
    pub fn lat(&self) -> f64 {
        self.lat
    }
    pub fn lon(&self) -> f64 {
        self.lon
    }
}

/// What a site can do beyond receiving and grading, which every site does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Function tests of electronics, which must pass before a unit can be graded A.
    Testing,
    Refurbish,
    Recycle,
    Resale,
    ReturnToVendor,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    pub location: Coordinates,
    pub capabilities: Vec<Capability>,
    pub daily_capacity_units: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// A brand's retail store that takes in-store returns (BORIS).
    Retail,
    /// A convenience store parcel counter (unmanned drop-off).
    Konbini,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    pub id: StoreId,
    pub name: String,
    pub kind: StoreKind,
    pub location: Coordinates,
}

/// Why the customer sends it back. Reason codes feed root-cause analysis, so they are a closed
/// list rather than free text (free text travels beside them as a note).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    TooSmall,
    TooLarge,
    NotAsDescribed,
    DamagedInTransit,
    Defective,
    WrongItemSent,
    ChangedMind,
    ArrivedLate,
    Other,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 9] = [
        Self::TooSmall,
        Self::TooLarge,
        Self::NotAsDescribed,
        Self::DamagedInTransit,
        Self::Defective,
        Self::WrongItemSent,
        Self::ChangedMind,
        Self::ArrivedLate,
        Self::Other,
    ];
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReturnLine {
    pub sku: Sku,
    pub qty: u32,
    pub reason: ReasonCode,
}

/// Most lines a return asked for from outside the fleet (API, store counter) may carry. Below
/// the wire's own limit (`wire::payload::RETURN_LINES_MAX`, which checks it is no lower), which also covers what was stored
/// before this limit existed.
pub const RETURN_LINES_MAX: usize = 100;
/// Most units one line of such a return may carry.
pub const LINE_QTY_MAX: u32 = 20;
/// Most units one return may carry: what its lines allow at most, so the API's schema states it
/// exactly. Below the smallest site's daily capacity, so the largest return can be routed, and
/// small enough that whatever a site or its crew sizes by a return's units (a list per unit to
/// receive) stays a few kilobytes.
pub const RETURN_UNITS_MAX: u32 = RETURN_LINES_MAX as u32 * LINE_QTY_MAX;

impl ReturnLine {
    /// A line as stored or sent: at least one unit. Decoding uses this, so a return stored
    /// before [`LINE_QTY_MAX`] existed still travels; consumers bound what they size by `qty`.
    pub fn new(sku: Sku, qty: u32, reason: ReasonCode) -> Result<Self, DomainError> {
        if qty == 0 {
            return Err(DomainError::BadQuantity(qty));
        }
        Ok(Self { sku, qty, reason })
    }

    /// A line asked for from outside the fleet: 1..=[`LINE_QTY_MAX`] units.
    pub fn requested(sku: Sku, qty: u32, reason: ReasonCode) -> Result<Self, DomainError> {
        if qty > LINE_QTY_MAX {
            return Err(DomainError::QuantityTooLarge(qty));
        }
        Self::new(sku, qty, reason)
    }
}

/// Units in `lines`, without overflow.
pub fn n_units(lines: &[ReturnLine]) -> u64 {
    lines.iter().map(|l| u64::from(l.qty)).sum()
}

/// Inspected condition of a unit: A like new … D damaged, X unsellable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grade {
    A,
    B,
    C,
    D,
    X,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    Restock,
    Resale,
    Refurbish,
    Recycle,
    Dispose,
    ReturnToVendor,
}

macro_rules! named_enum {
    ($name:ident, $kind:literal, [$($v:ident => $s:literal),* $(,)?]) => {
        impl $name {
            pub const ALL_NAMES: &'static [&'static str] = &[$($s),*];
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                match s {
                    $($s => Ok(Self::$v),)*
                    _ => Err(DomainError::UnknownName { kind: $kind, value: s.chars().take(ID_LEN_MAX).collect(), allowed: Self::ALL_NAMES }),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(Grade, "grade", [A => "A", B => "B", C => "C", D => "D", X => "X"]);

impl Grade {
    /// Position from best (A = 0) to worst (X = 4): the index into per-grade tables (prices,
    /// shares) and the order grades compare in.
    pub fn index(self) -> usize {
        match self {
            Self::A => 0,
            Self::B => 1,
            Self::C => 2,
            Self::D => 3,
            Self::X => 4,
        }
    }
}

/// What an inspector found wrong with a unit, recorded with its grade. A closed list, so
/// defects can be counted per SKU and site to find root causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefectCode {
    Stain,
    Tear,
    Scratch,
    Dent,
    MissingPart,
    MissingTags,
    NotWorking,
    Odor,
    PackagingDamaged,
}

impl DefectCode {
    pub const ALL: [DefectCode; 9] = [
        Self::Stain,
        Self::Tear,
        Self::Scratch,
        Self::Dent,
        Self::MissingPart,
        Self::MissingTags,
        Self::NotWorking,
        Self::Odor,
        Self::PackagingDamaged,
    ];
}

named_enum!(DefectCode, "defect code", [
    Stain => "stain",
    Tear => "tear",
    Scratch => "scratch",
    Dent => "dent",
    MissingPart => "missing_part",
    MissingTags => "missing_tags",
    NotWorking => "not_working",
    Odor => "odor",
    PackagingDamaged => "packaging_damaged",
]);
named_enum!(Disposition, "disposition", [
    Restock => "restock",
    Resale => "resale",
    Refurbish => "refurbish",
    Recycle => "recycle",
    Dispose => "dispose",
    ReturnToVendor => "return_to_vendor",
]);
named_enum!(ReasonCode, "reason code", [
    TooSmall => "too_small",
    TooLarge => "too_large",
    NotAsDescribed => "not_as_described",
    DamagedInTransit => "damaged_in_transit",
    Defective => "defective",
    WrongItemSent => "wrong_item_sent",
    ChangedMind => "changed_mind",
    ArrivedLate => "arrived_late",
    Other => "other",
]);

/// How a disposed unit leaves its site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Departure {
    /// Packed for another site (repair elsewhere, or stock moved to where it sells).
    Transfer {
        to: SiteId,
    },
    /// Handed to the merchant's vendor (return to vendor).
    Vendor,
    Recycler,
    Disposal,
    /// Shipped to a customer as the replacement of an exchange.
    Exchange {
        rma: RmaId,
    },
    /// Sent back as it is to the customer of its return `rma` (a declined trade-in, a repair
    /// declined or done), whatever disposition it was given at the site.
    ToCustomer {
        rma: RmaId,
    },
}

impl Departure {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Transfer { .. } => "transfer",
            Self::Vendor => "vendor",
            Self::Recycler => "recycler",
            Self::Disposal => "disposal",
            Self::Exchange { .. } => "exchange",
            Self::ToCustomer { .. } => "return to customer",
        }
    }

    /// Whether a unit with `disposition` may leave this way. A transfer carries any unit; the
    /// others execute one disposition each, and only sellable stock ships to a customer as an
    /// exchange. A unit going back to its own customer goes whatever it was given.
    pub fn allows(&self, disposition: Disposition) -> bool {
        match self {
            Self::Transfer { .. } | Self::ToCustomer { .. } => true,
            Self::Vendor => disposition == Disposition::ReturnToVendor,
            Self::Recycler => disposition == Disposition::Recycle,
            Self::Disposal => disposition == Disposition::Dispose,
            Self::Exchange { .. } => disposition == Disposition::Restock,
        }
    }

    /// How a unit with `disposition` leaves when no transfer or exchange is asked of it; `None`
    /// for dispositions executed in a bin at the site.
    pub fn for_disposition(disposition: Disposition) -> Option<Self> {
        match disposition {
            Disposition::ReturnToVendor => Some(Self::Vendor),
            Disposition::Recycle => Some(Self::Recycler),
            Disposition::Dispose => Some(Self::Disposal),
            Disposition::Restock | Disposition::Resale | Disposition::Refurbish => None,
        }
    }
}

impl fmt::Display for Departure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transfer { to } => write!(f, "transfer to {to}"),
            Self::Exchange { rma } => write!(f, "exchange for {rma}"),
            Self::ToCustomer { rma } => write!(f, "return to the customer of {rma}"),
            other => f.write_str(other.name()),
        }
    }
}

/// Where a unit is in its life at a site. Transitions are checked at the station before an op
/// is written and again at the coordinator, where a violation becomes an anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitState {
    Received,
    Graded(Grade),
    /// Its disposition is decided; it waits to be executed.
    Disposed(Disposition),
    /// In a bin at the site (sellable stock, resale staging, the repair area, an outbound cage).
    Placed(Disposition),
    /// It left the site; a transfer arrives at another site as `Disposed` again.
    Departed(Disposition),
    Voided,
}

impl UnitState {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Graded(_) => "graded",
            Self::Disposed(_) => "disposed",
            Self::Placed(_) => "placed",
            Self::Departed(_) => "departed",
            Self::Voided => "voided",
        }
    }

    /// The disposition decided for the unit, once there is one.
    pub fn disposition(&self) -> Option<Disposition> {
        match self {
            Self::Disposed(d) | Self::Placed(d) | Self::Departed(d) => Some(*d),
            _ => None,
        }
    }

    /// Stable text form, for storage and JSON: `received`, `graded:B`, `disposed:resale`, `voided`.
    pub fn encode(&self) -> String {
        match self {
            Self::Received => "received".into(),
            Self::Graded(g) => format!("graded:{g}"),
            Self::Disposed(d) => format!("disposed:{d}"),
            Self::Placed(d) => format!("placed:{d}"),
            Self::Departed(d) => format!("departed:{d}"),
            Self::Voided => "voided".into(),
        }
    }

    pub fn decode(s: &str) -> Result<Self, DomainError> {
        match s.split_once(':') {
            None if s == "received" => Ok(Self::Received),
            None if s == "voided" => Ok(Self::Voided),
            Some(("graded", g)) => Ok(Self::Graded(Grade::parse(g)?)),
            Some(("disposed", d)) => Ok(Self::Disposed(Disposition::parse(d)?)),
            Some(("placed", d)) => Ok(Self::Placed(Disposition::parse(d)?)),
            Some(("departed", d)) => Ok(Self::Departed(Disposition::parse(d)?)),
            _ => Err(DomainError::UnknownName {
                kind: "unit state",
                value: s.chars().take(ID_LEN_MAX).collect(),
                allowed: &[
                    "received",
                    "graded:<grade>",
                    "disposed:<disposition>",
                    "placed:<disposition>",
                    "departed:<disposition>",
                    "voided",
                ],
            }),
        }
    }

    /// Grading is allowed after receipt and again after grading (a re-grade is a correction).
    pub fn grade(self, lpn: &Lpn, grade: Grade) -> Result<Self, DomainError> {
        match self {
            Self::Received | Self::Graded(_) => Ok(Self::Graded(grade)),
            _ => Err(self.invalid(lpn, "grade")),
        }
    }

    pub fn dispose(self, lpn: &Lpn, disposition: Disposition) -> Result<Self, DomainError> {
        match self {
            Self::Graded(_) => Ok(Self::Disposed(disposition)),
            _ => Err(self.invalid(lpn, "disposition")),
        }
    }

    /// Takes back a disposition: the unit is graded `grade` again.
    pub fn undo_disposition(self, lpn: &Lpn, grade: Grade) -> Result<Self, DomainError> {
        match self {
            Self::Disposed(_) => Ok(Self::Graded(grade)),
            _ => Err(self.invalid(lpn, "undo of a disposition")),
        }
    }

    /// Into a bin: a disposed unit, or one moved from another bin.
    pub fn put_away(self, lpn: &Lpn) -> Result<Self, DomainError> {
        match self {
            Self::Disposed(d) | Self::Placed(d) => Ok(Self::Placed(d)),
            _ => Err(self.invalid(lpn, "put-away")),
        }
    }

    /// Out of the site, the way `departure` says, if its disposition allows that way.
    pub fn depart(self, lpn: &Lpn, departure: &Departure) -> Result<Self, DomainError> {
        match self {
            Self::Disposed(d) | Self::Placed(d) if departure.allows(d) => Ok(Self::Departed(d)),
            Self::Disposed(_) | Self::Placed(_) => Err(self.invalid(lpn, departure.name())),
            _ => Err(self.invalid(lpn, "departure")),
        }
    }

    /// A transferred unit arrives at its new site, disposed as it left.
    pub fn arrive(self, lpn: &Lpn) -> Result<Self, DomainError> {
        match self {
            Self::Departed(d) => Ok(Self::Disposed(d)),
            _ => Err(self.invalid(lpn, "arrival")),
        }
    }

    pub fn void(self, lpn: &Lpn) -> Result<Self, DomainError> {
        match self {
            Self::Voided => Err(self.invalid(lpn, "void")),
            _ => Ok(Self::Voided),
        }
    }

    fn invalid(self, lpn: &Lpn, event: &'static str) -> DomainError {
        DomainError::InvalidTransition {
            lpn: lpn.to_string(),
            state: self.name(),
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_line_carries_one_to_line_qty_max_units() {
        let sku = || Sku::new("TEE-WHT-M").unwrap();
        assert!(ReturnLine::requested(sku(), 1, ReasonCode::Other).is_ok());
        assert!(ReturnLine::requested(sku(), LINE_QTY_MAX, ReasonCode::Other).is_ok());
        assert_eq!(
            ReturnLine::requested(sku(), LINE_QTY_MAX + 1, ReasonCode::Other),
            Err(DomainError::QuantityTooLarge(LINE_QTY_MAX + 1))
        );
        assert_eq!(
            ReturnLine::requested(sku(), 0, ReasonCode::Other),
            Err(DomainError::BadQuantity(0))
        );
        let lines = vec![ReturnLine::new(sku(), u32::MAX, ReasonCode::Other).unwrap(); 3];
        assert_eq!(n_units(&lines), 3 * u64::from(u32::MAX));
    }

    #[test]
    fn ids_are_validated_with_a_named_problem() {
        assert!(SiteId::new("osaka").is_ok());
        let err = SiteId::new("Osaka").unwrap_err();
        assert!(err.to_string().contains("'O'"), "{err}");
        assert_eq!(
            SiteId::new("").unwrap_err(),
            DomainError::EmptyId { kind: "site" }
        );
        assert!(matches!(
            Sku::new("X".repeat(ID_LEN_MAX + 1)),
            Err(DomainError::IdTooLong { .. })
        ));
    }

    #[test]
    fn coordinates_reject_out_of_range() {
        assert!(Coordinates::new(35.0, 139.0).is_ok());
        assert!(Coordinates::new(91.0, 139.0).is_err());
        assert!(Coordinates::new(35.0, 181.0).is_err());
    }

    #[test]
    fn lifecycle_refuses_disposition_before_grading() {
        let lpn = Lpn::new("LPN-1").unwrap();
        let received = UnitState::Received;
        assert!(received.dispose(&lpn, Disposition::Restock).is_err());
        let graded = received.grade(&lpn, Grade::B).unwrap();
        let disposed = graded.dispose(&lpn, Disposition::Resale).unwrap();
        assert_eq!(disposed, UnitState::Disposed(Disposition::Resale));
        assert!(disposed.grade(&lpn, Grade::A).is_err());
        assert_eq!(disposed.void(&lpn).unwrap(), UnitState::Voided);
        assert!(UnitState::Voided.void(&lpn).is_err());
    }

    #[test]
    fn execution_follows_the_disposition() {
        let lpn = Lpn::new("LPN-1").unwrap();
        let restock = UnitState::Disposed(Disposition::Restock);
        let placed = restock.put_away(&lpn).unwrap();
        assert_eq!(placed, UnitState::Placed(Disposition::Restock));
        assert_eq!(
            placed.put_away(&lpn).unwrap(),
            placed,
            "a move between bins"
        );
        assert!(placed.depart(&lpn, &Departure::Recycler).is_err());
        let rma = RmaId::new("RMA-1").unwrap();
        let shipped = placed.depart(&lpn, &Departure::Exchange { rma }).unwrap();
        assert_eq!(shipped, UnitState::Departed(Disposition::Restock));
        assert!(shipped.put_away(&lpn).is_err());
        assert_eq!(shipped.arrive(&lpn).unwrap(), restock);

        let recycle = UnitState::Disposed(Disposition::Recycle);
        assert!(recycle.depart(&lpn, &Departure::Vendor).is_err());
        assert!(recycle.depart(&lpn, &Departure::Recycler).is_ok());
        let to = SiteId::new("fukuoka").unwrap();
        assert!(recycle.depart(&lpn, &Departure::Transfer { to }).is_ok());
        assert!(UnitState::Graded(Grade::A).put_away(&lpn).is_err());
        assert!(UnitState::Received.arrive(&lpn).is_err());
        for d in [
            Disposition::ReturnToVendor,
            Disposition::Recycle,
            Disposition::Dispose,
        ] {
            assert!(Departure::for_disposition(d).unwrap().allows(d));
        }
        assert_eq!(Departure::for_disposition(Disposition::Resale), None);
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for state in [
            UnitState::Received,
            UnitState::Graded(Grade::C),
            UnitState::Disposed(Disposition::ReturnToVendor),
            UnitState::Placed(Disposition::Resale),
            UnitState::Departed(Disposition::Restock),
            UnitState::Voided,
        ] {
            assert_eq!(UnitState::decode(&state.encode()).unwrap(), state);
        }
        let err = Disposition::parse("burn").unwrap_err().to_string();
        assert!(err.contains("burn") && err.contains("recycle"), "{err}");
        assert!(UnitState::decode("graded:Q").is_err());
    }
}
