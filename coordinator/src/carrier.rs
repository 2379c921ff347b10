//! Carriers behind one trait: what a carrier integration posts is turned into plain tracking
//! events (picked up, in transit, delivered to the site) for the return's timeline. The
//! simulated carrier issues real-looking 12-digit slips (7DR, so receiving stations scan them)
//! and moves the demo's parcels along.

use modori_shared::barcode::japan12_encode;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Events accepted in one carrier post.
pub const EVENTS_PER_POST_MAX: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    PickedUp,
    InTransit,
    DeliveredToSite,
    /// Lost, damaged or refused on the way: ops must look.
    Exception,
}

impl TrackingStatus {
    pub const ALL: [Self; 4] = [
        Self::PickedUp,
        Self::InTransit,
        Self::DeliveredToSite,
        Self::Exception,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PickedUp => "picked_up",
            Self::InTransit => "in_transit",
            Self::DeliveredToSite => "delivered_to_site",
            Self::Exception => "exception",
        }
    }
}

/// One tracking event, carrier-neutral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackingEvent {
    pub tracking: String,
    pub status: TrackingStatus,
    pub at_ms: i64,
    pub location: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CarrierError {
    #[error("unknown carrier {0:?}")]
    UnknownCarrier(String),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// A carrier integration.
pub trait Carrier: Send + Sync {
    /// The name posts are addressed to (`"carrier": "sim"`).
    fn id(&self) -> &'static str;
    /// The events in a post of this carrier's format.
    fn parse(&self, events: &serde_json::Value) -> Result<Vec<TrackingEvent>, CarrierError>;
}

/// The format of the simulated carrier, and of any integration that already speaks ours:
/// `[{"tracking": "…", "status": "in_transit", "at_ms": 1790000000000, "location": "…"}]`.
pub struct Simulated;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimEvent {
    tracking: String,
    status: TrackingStatus,
    at_ms: i64,
    #[serde(default)]
    location: Option<String>,
}

/// Longest tracking number or location accepted, in bytes.
pub const FIELD_BYTES_MAX: usize = 64;

impl Carrier for Simulated {
    fn id(&self) -> &'static str {
        "sim"
    }

    fn parse(&self, events: &serde_json::Value) -> Result<Vec<TrackingEvent>, CarrierError> {
        let list: Vec<SimEvent> =
            serde_path_to_error::deserialize(events).map_err(|e| CarrierError::Invalid {
                path: format!("events{}", path_suffix(&e.path().to_string())),
                message: e.inner().to_string(),
            })?;
        if list.len() > EVENTS_PER_POST_MAX {
            return Err(CarrierError::Invalid {
                path: "events".into(),
                message: format!("at most {EVENTS_PER_POST_MAX} events per post"),
            });
        }
        list.into_iter()
            .enumerate()
            .map(|(i, e)| {
                let field = |name: &str, message: String| CarrierError::Invalid {
                    path: format!("events[{i}].{name}"),
                    message,
                };
                if e.tracking.is_empty() || e.tracking.len() > FIELD_BYTES_MAX {
                    return Err(field(
                        "tracking",
                        format!("must be 1..={FIELD_BYTES_MAX} bytes"),
                    ));
                }
                if e.location
                    .as_ref()
                    .is_some_and(|l| l.len() > FIELD_BYTES_MAX)
                {
                    return Err(field(
                        "location",
                        format!("at most {FIELD_BYTES_MAX} bytes"),
                    ));
                }
                if e.at_ms < 0 {
                    return Err(field("at_ms", "must not be negative".into()));
                }
                Ok(TrackingEvent {
                    tracking: e.tracking,
                    status: e.status,
                    at_ms: e.at_ms,
                    location: e.location,
                })
            })
            .collect()
    }
}

/// `[3].status` → `[3].status`; `.` → ``: serde's path of the whole value is a dot.
fn path_suffix(path: &str) -> String {
    if path == "." {
        String::new()
    } else if path.starts_with('[') {
        path.to_owned()
    } else {
        format!(".{path}")
    }
}

/// The carriers this coordinator knows.
pub fn carriers() -> Vec<Box<dyn Carrier>> {
    vec![Box::new(Simulated)]
}

/// Finds a carrier by the name a post uses.
pub fn carrier(id: &str) -> Result<Box<dyn Carrier>, CarrierError> {
    carriers()
        .into_iter()
        .find(|c| c.id() == id)
        .ok_or_else(|| CarrierError::UnknownCarrier(id.chars().take(32).collect()))
}

/// A slip number the simulated carrier issues for the `n`th parcel: 11 digits from `n`, and
/// its 7DR check digit.
pub fn simulated_tracking(n: u64) -> String {
    let body = format!("{:011}", n % 100_000_000_000);
    japan12_encode(&body).unwrap_or(body)
}

/// Where the simulated carrier has a parcel picked up at `registered_ms` by `now_ms`: picked
/// up after a quarter of `transit_ms`, in transit after a half, delivered at the end.
pub fn simulated_progress(
    registered_ms: i64,
    now_ms: i64,
    transit_ms: i64,
) -> Vec<(TrackingStatus, i64)> {
    let steps = [
        (TrackingStatus::PickedUp, transit_ms / 4),
        (TrackingStatus::InTransit, transit_ms / 2),
        (TrackingStatus::DeliveredToSite, transit_ms),
    ];
    steps
        .into_iter()
        .map(|(s, after)| (s, registered_ms + after))
        .filter(|(_, at)| *at <= now_ms)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_posts_parse_and_bad_ones_name_the_field() {
        let sim = carrier("sim").unwrap();
        let ok = serde_json::json!([
            {"tracking": "123456789013", "status": "picked_up", "at_ms": 1},
            {"tracking": "123456789013", "status": "delivered_to_site", "at_ms": 2, "location": "Osaka"}
        ]);
        let events = sim.parse(&ok).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].status, TrackingStatus::DeliveredToSite);
        let bad = serde_json::json!([
            {"tracking": "1", "status": "picked_up", "at_ms": 1},
            {"tracking": "1", "status": "teleported", "at_ms": 1}
        ]);
        let err = sim.parse(&bad).unwrap_err().to_string();
        assert!(err.starts_with("events[1].status"), "{err}");
        let empty = serde_json::json!([{"tracking": "", "status": "in_transit", "at_ms": 1}]);
        assert!(sim
            .parse(&empty)
            .unwrap_err()
            .to_string()
            .contains("events[0].tracking"));
        assert_eq!(
            carrier("pigeon").err(),
            Some(CarrierError::UnknownCarrier("pigeon".into()))
        );
    }

    #[test]
    fn the_simulated_carrier_issues_scannable_slips_and_moves_parcels_along() {
        let slip = simulated_tracking(42);
        assert_eq!(slip.len(), 12);
        assert!(modori_shared::barcode::parse(&slip).is_ok(), "{slip}");
        assert!(simulated_progress(0, 100, 1000).is_empty());
        assert_eq!(
            simulated_progress(0, 600, 1000),
            vec![
                (TrackingStatus::PickedUp, 250),
                (TrackingStatus::InTransit, 500)
            ]
        );
        assert_eq!(simulated_progress(0, 1000, 1000).len(), 3);
    }
}
