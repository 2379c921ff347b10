//! The first frame each way. Its encoding is frozen forever: it is how two builds of different
//! protocol versions find out which version to speak, so it must decode under all of them.

use serde::{Deserialize, Serialize};

use super::{decode_body, encode_frame, WireError, PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use crate::domain::Epoch;

const MAGIC: [u8; 4] = *b"MDRI";

/// Sent by the agent when a connection opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    pub version_min: u16,
    pub version_max: u16,
    /// The site the agent believes it is. Informational: the coordinator uses the certificate.
    pub site: String,
    /// The epoch of the agent's database, which scopes its op sequence numbers.
    pub op_epoch: Epoch,
    /// Downstream resume point: the command stream epoch the agent last applied from, and the
    /// highest command seq it has durably applied in it.
    pub command_epoch: Option<Epoch>,
    pub command_applied_seq: u64,
}

/// The coordinator's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerHello {
    Accepted {
        version: u16,
        /// Highest op seq of `op_epoch` the coordinator has durably applied: resume after it.
        op_applied_seq: u64,
    },
    Refused {
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct ClientHelloFrozen {
    magic: [u8; 4],
    version_min: u16,
    version_max: u16,
    site: String,
    op_epoch: u64,
    command_epoch: Option<u64>,
    command_applied_seq: u64,
}

#[derive(Serialize, Deserialize)]
enum ServerHelloFrozen {
    Accepted { version: u16, op_applied_seq: u64 },
    Refused { reason: String },
}

impl ClientHello {
    /// A hello offering `PROTOCOL_VERSION_MIN..=version_max`.
    pub fn new(
        site: String,
        op_epoch: Epoch,
        command_epoch: Option<Epoch>,
        command_applied_seq: u64,
        version_max: u16,
    ) -> Self {
        Self {
            version_min: PROTOCOL_VERSION_MIN,
            version_max: version_max.min(PROTOCOL_VERSION),
            site,
            op_epoch,
            command_epoch,
            command_applied_seq,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode_frame(
            "client hello",
            &ClientHelloFrozen {
                magic: MAGIC,
                version_min: self.version_min,
                version_max: self.version_max,
                site: self.site.clone(),
                op_epoch: self.op_epoch.0,
                command_epoch: self.command_epoch.map(|e| e.0),
                command_applied_seq: self.command_applied_seq,
            },
        )
    }

    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let f: ClientHelloFrozen = decode_body("client hello", body)?;
        if f.magic != MAGIC {
            return Err(WireError::Malformed {
                what: "client hello",
                reason: "not a Modori agent (bad magic)".into(),
            });
        }
        Ok(Self {
            version_min: f.version_min,
            version_max: f.version_max,
            site: f.site,
            op_epoch: Epoch(f.op_epoch),
            command_epoch: f.command_epoch.map(Epoch),
            command_applied_seq: f.command_applied_seq,
        })
    }
}

impl ServerHello {
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let frozen = match self {
            Self::Accepted {
                version,
                op_applied_seq,
            } => ServerHelloFrozen::Accepted {
                version: *version,
                op_applied_seq: *op_applied_seq,
            },
            Self::Refused { reason } => ServerHelloFrozen::Refused {
                reason: reason.clone(),
            },
        };
        encode_frame("server hello", &frozen)
    }

    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        Ok(match decode_body("server hello", body)? {
            ServerHelloFrozen::Accepted {
                version,
                op_applied_seq,
            } => Self::Accepted {
                version,
                op_applied_seq,
            },
            ServerHelloFrozen::Refused { reason } => Self::Refused { reason },
        })
    }
}

/// The version both sides speak, or an error that names both ranges.
pub fn negotiate(ours: (u16, u16), theirs: (u16, u16)) -> Result<u16, VersionMismatch> {
    let low = ours.0.max(theirs.0);
    let high = ours.1.min(theirs.1);
    if low > high {
        return Err(VersionMismatch { ours, theirs });
    }
    Ok(high)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no common protocol version: we speak {}..={}, the peer speaks {}..={}", ours.0, ours.1, theirs.0, theirs.1)]
pub struct VersionMismatch {
    pub ours: (u16, u16),
    pub theirs: (u16, u16),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::split_frame;

    #[test]
    fn hello_round_trips_and_its_bytes_are_frozen() {
        let hello = ClientHello {
            version_min: 1,
            version_max: 2,
            site: "osaka".into(),
            op_epoch: Epoch(0x0102),
            command_epoch: Some(Epoch(3)),
            command_applied_seq: 300,
        };
        let frame = hello.encode().unwrap();
        // Any change here breaks every deployed agent's first frame: it must never change.
        assert_eq!(
            frame,
            [
                0, 0, 0, 20, b'M', b'D', b'R', b'I', 1, 2, 5, b'o', b's', b'a', b'k', b'a', 251, 1,
                2, 1, 3, 251, 1, 44
            ]
        );
        let (body, _) = split_frame(&frame).unwrap().unwrap();
        assert_eq!(ClientHello::decode(body).unwrap(), hello);
    }

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        assert_eq!(negotiate((1, 2), (1, 2)), Ok(2));
        assert_eq!(negotiate((1, 2), (1, 1)), Ok(1));
        assert_eq!(negotiate((2, 3), (1, 2)), Ok(2));
        let err = negotiate((2, 3), (1, 1)).unwrap_err();
        assert!(err.to_string().contains("1..=1"), "{err}");
    }
}
