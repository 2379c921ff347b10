//! Frames after the handshake, encoded by the negotiated protocol version.
//!
//! Version 2 added `outbox_head_seq` to op batches, so the coordinator can show how far behind a
//! site is in ops. A version-1 agent is still served; its lag is reported as unknown.
//! Version 3 added [`Message::CommandResume`]: the coordinator numbers its command streams in a
//! new epoch at every start, and tells a site whose position it can vouch for to carry it over
//! instead of applying its whole stream again. Versions 2 and 3 share one encoding (3 only
//! appended a variant); a version-2 peer is never sent the new one.

use serde::{Deserialize, Serialize};

use super::{
    decode_body, encode_body, encode_frame, frame_of, pack, unpack, WireError, PROTOCOL_VERSION,
    PROTOCOL_VERSION_MIN,
};
use crate::domain::Epoch;

/// One sequenced item (an op or a command): its sequence number and its encoded payload.
/// The payload is stored as these exact bytes on both sides, so its hash can detect a
/// duplicate that is not really a duplicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequenced {
    pub seq: u64,
    #[serde(with = "super::bytes")]
    pub payload: Vec<u8>,
}

/// Devices one health report carries at most; a report with more is a protocol error.
pub const HEALTH_DEVICES_MAX: usize = 64;
/// Longest device name or kind in a health report, in bytes.
pub const HEALTH_NAME_BYTES_MAX: usize = 64;

/// One scanner or printer of a site, as its agent last saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHealth {
    pub name: String,
    /// `scanner` or `printer`.
    pub kind: String,
    pub connected: bool,
    /// When it reached that state, by the site's clock (Unix ms).
    pub since_unix_ms: i64,
    /// Label jobs waiting (printers; 0 for scanners).
    pub n_jobs_waiting: u32,
}

/// Why a peer closes the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    Protocol,
    Unauthorized,
    Internal,
    ShuttingDown,
}

/// A message after the handshake, as the rest of the code sees it (the newest shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Upstream ops of one epoch, in seq order. `outbox_head_seq` is the highest seq the site
    /// has recorded (None when the peer speaks version 1).
    OpBatch {
        epoch: Epoch,
        ops: Vec<Sequenced>,
        outbox_head_seq: Option<u64>,
    },
    /// Every op of `epoch` up to and including `up_to_seq` is durably applied.
    OpAck {
        epoch: Epoch,
        up_to_seq: u64,
    },
    /// Downstream commands of the coordinator's stream `epoch` for this site, in seq order.
    CommandBatch {
        epoch: Epoch,
        commands: Vec<Sequenced>,
    },
    /// Every command of `epoch` up to and including `up_to_seq` is durably applied at the site.
    CommandAck {
        epoch: Epoch,
        up_to_seq: u64,
    },
    /// The sender is closing; `message` says why in words an operator can act on.
    Error {
        code: ErrorCode,
        message: String,
    },
    /// The coordinator's wall clock when it sent this, in Unix milliseconds, so a site can see
    /// how far its own clock is off (timestamps in ops come from the site's clock). Version 2.
    Clock {
        unix_ms: i64,
    },
    /// A site asks for a new certificate before its own expires: a PKCS#10 request (DER) for a
    /// key it generated. Version 2.
    RenewCertificate {
        csr_der: Vec<u8>,
    },
    /// The coordinator's answer: the signed certificate (DER), or why not. Version 2.
    CertificateRenewed {
        cert_der: Vec<u8>,
    },
    RenewalRefused {
        reason: String,
    },
    /// The site's devices, sent after connecting and whenever one connects or disconnects,
    /// so central ops see a dead scanner or printer; with the highest op seq of the
    /// connection's stream, so an idle site's lag is known too. Version 2 (appended).
    SiteHealth {
        outbox_head_seq: u64,
        devices: Vec<DeviceHealth>,
    },
    /// Sent by the coordinator right after its hello, before any command: the commands up to
    /// `after_seq` of `from_epoch` (the position the site's hello reported) are the same commands
    /// as those up to `after_seq` of `epoch`, so the site continues `epoch` from there. Version 3.
    CommandResume {
        from_epoch: Epoch,
        epoch: Epoch,
        after_seq: u64,
    },
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OpBatch { .. } => "op_batch",
            Self::OpAck { .. } => "op_ack",
            Self::CommandBatch { .. } => "command_batch",
            Self::CommandAck { .. } => "command_ack",
            Self::Error { .. } => "error",
            Self::Clock { .. } => "clock",
            Self::RenewCertificate { .. } => "renew_certificate",
            Self::CertificateRenewed { .. } => "certificate_renewed",
            Self::RenewalRefused { .. } => "renewal_refused",
            Self::SiteHealth { .. } => "site_health",
            Self::CommandResume { .. } => "command_resume",
        }
    }

    /// Encodes as a whole frame in protocol `version`.
    pub fn encode(&self, version: u16) -> Result<Vec<u8>, WireError> {
        match version {
            1 => match V1::try_from(self.clone()) {
                Ok(v1) => encode_frame("message v1", &v1),
                Err(kind) => Err(WireError::Encode {
                    what: "message v1",
                    reason: format!("{kind} does not exist in protocol version 1"),
                }),
            },
            2 if matches!(self, Self::CommandResume { .. }) => Err(WireError::Encode {
                what: "message v2",
                reason: format!("{} does not exist in protocol version 2", self.kind()),
            }),
            2 | 3 => match V2OpBatch::of(self) {
                Some(batch) => encode_frame("message v3", &batch),
                None => encode_frame("message v3", &V2::from(self.clone())),
            },
            // Version 3's messages, packed.
            4 => {
                let body = match V2OpBatch::of(self) {
                    Some(batch) => encode_body("message v4", &batch)?,
                    None => encode_body("message v4", &V2::from(self.clone()))?,
                };
                frame_of(&pack("message v4", &body)?)
            }
            _ => Err(WireError::UnsupportedVersion {
                what: "message",
                version,
            }),
        }
    }

    /// Decodes a frame body in protocol `version`.
    pub fn decode(version: u16, body: &[u8]) -> Result<Self, WireError> {
        match version {
            1 => Ok(decode_body::<V1>("message v1", body)?.into()),
            2 => match decode_body::<V2>("message v2", body)? {
                V2::CommandResume { .. } => Err(WireError::Malformed {
                    what: "message v2",
                    reason: "command_resume does not exist in protocol version 2".into(),
                }),
                m => Ok(m.into()),
            },
            3 => Ok(decode_body::<V2>("message v3", body)?.into()),
            4 => Ok(decode_body::<V2>("message v4", &unpack("message v4", body)?)?.into()),
            _ => Err(WireError::UnsupportedVersion {
                what: "message",
                version,
            }),
        }
    }
}

/// Every version this build can encode and decode.
pub const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u16> =
    PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION;

#[derive(Serialize, Deserialize)]
enum V1 {
    OpBatch {
        epoch: u64,
        ops: Vec<Sequenced>,
    },
    OpAck {
        epoch: u64,
        up_to_seq: u64,
    },
    CommandBatch {
        epoch: u64,
        commands: Vec<Sequenced>,
    },
    CommandAck {
        epoch: u64,
        up_to_seq: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// Versions 2 and 3 (3 appended `CommandResume`).
#[derive(Serialize, Deserialize)]
enum V2 {
    OpBatch {
        epoch: u64,
        ops: Vec<Sequenced>,
        outbox_head_seq: u64,
    },
    OpAck {
        epoch: u64,
        up_to_seq: u64,
    },
    CommandBatch {
        epoch: u64,
        commands: Vec<Sequenced>,
    },
    CommandAck {
        epoch: u64,
        up_to_seq: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Clock {
        unix_ms: i64,
    },
    RenewCertificate {
        csr_der: Vec<u8>,
    },
    CertificateRenewed {
        cert_der: Vec<u8>,
    },
    RenewalRefused {
        reason: String,
    },
    SiteHealth {
        outbox_head_seq: u64,
        devices: Vec<DeviceHealth>,
    },
    CommandResume {
        from_epoch: u64,
        epoch: u64,
        after_seq: u64,
    },
}

/// [`V2::OpBatch`] borrowing its ops, so encoding a batch copies each payload once, into the
/// encoding, instead of cloning the message first. Its only variant has `OpBatch`'s index (0)
/// and fields, so it encodes to the same bytes (tested).
#[derive(Serialize)]
enum V2OpBatch<'a> {
    OpBatch {
        epoch: u64,
        ops: &'a [Sequenced],
        outbox_head_seq: u64,
    },
}

impl<'a> V2OpBatch<'a> {
    fn of(m: &'a Message) -> Option<Self> {
        match m {
            Message::OpBatch {
                epoch,
                ops,
                outbox_head_seq,
            } => {
                // As `V2::from`: a batch always carries its own last seq, so the head is at
                // least that.
                let last = ops.last().map_or(0, |op| op.seq);
                Some(V2OpBatch::OpBatch {
                    epoch: epoch.0,
                    ops,
                    outbox_head_seq: outbox_head_seq.unwrap_or(last).max(last),
                })
            }
            _ => None,
        }
    }
}

/// Messages added after version 1 have no version-1 form; the error names the message.
impl TryFrom<Message> for V1 {
    type Error = &'static str;

    fn try_from(m: Message) -> Result<Self, &'static str> {
        Ok(match m {
            Message::OpBatch { epoch, ops, .. } => V1::OpBatch {
                epoch: epoch.0,
                ops,
            },
            Message::OpAck { epoch, up_to_seq } => V1::OpAck {
                epoch: epoch.0,
                up_to_seq,
            },
            Message::CommandBatch { epoch, commands } => V1::CommandBatch {
                epoch: epoch.0,
                commands,
            },
            Message::CommandAck { epoch, up_to_seq } => V1::CommandAck {
                epoch: epoch.0,
                up_to_seq,
            },
            Message::Error { code, message } => V1::Error { code, message },
            m @ (Message::Clock { .. }
            | Message::RenewCertificate { .. }
            | Message::CertificateRenewed { .. }
            | Message::RenewalRefused { .. }
            | Message::SiteHealth { .. }
            | Message::CommandResume { .. }) => return Err(m.kind()),
        })
    }
}

impl From<V1> for Message {
    fn from(m: V1) -> Self {
        match m {
            V1::OpBatch { epoch, ops } => Message::OpBatch {
                epoch: Epoch(epoch),
                ops,
                outbox_head_seq: None,
            },
            V1::OpAck { epoch, up_to_seq } => Message::OpAck {
                epoch: Epoch(epoch),
                up_to_seq,
            },
            V1::CommandBatch { epoch, commands } => Message::CommandBatch {
                epoch: Epoch(epoch),
                commands,
            },
            V1::CommandAck { epoch, up_to_seq } => Message::CommandAck {
                epoch: Epoch(epoch),
                up_to_seq,
            },
            V1::Error { code, message } => Message::Error { code, message },
        }
    }
}

impl From<Message> for V2 {
    fn from(m: Message) -> Self {
        match m {
            Message::OpBatch {
                epoch,
                ops,
                outbox_head_seq,
            } => {
                // A batch always carries its own last seq, so the head is at least that.
                let last = ops.last().map_or(0, |op| op.seq);
                V2::OpBatch {
                    epoch: epoch.0,
                    ops,
                    outbox_head_seq: outbox_head_seq.unwrap_or(last).max(last),
                }
            }
            Message::OpAck { epoch, up_to_seq } => V2::OpAck {
                epoch: epoch.0,
                up_to_seq,
            },
            Message::CommandBatch { epoch, commands } => V2::CommandBatch {
                epoch: epoch.0,
                commands,
            },
            Message::CommandAck { epoch, up_to_seq } => V2::CommandAck {
                epoch: epoch.0,
                up_to_seq,
            },
            Message::Error { code, message } => V2::Error { code, message },
            Message::Clock { unix_ms } => V2::Clock { unix_ms },
            Message::RenewCertificate { csr_der } => V2::RenewCertificate { csr_der },
            Message::CertificateRenewed { cert_der } => V2::CertificateRenewed { cert_der },
            Message::RenewalRefused { reason } => V2::RenewalRefused { reason },
            Message::SiteHealth {
                outbox_head_seq,
                devices,
            } => V2::SiteHealth {
                outbox_head_seq,
                devices,
            },
            Message::CommandResume {
                from_epoch,
                epoch,
                after_seq,
            } => V2::CommandResume {
                from_epoch: from_epoch.0,
                epoch: epoch.0,
                after_seq,
            },
        }
    }
}

impl From<V2> for Message {
    fn from(m: V2) -> Self {
        match m {
            V2::OpBatch {
                epoch,
                ops,
                outbox_head_seq,
            } => Message::OpBatch {
                epoch: Epoch(epoch),
                ops,
                outbox_head_seq: Some(outbox_head_seq),
            },
            V2::OpAck { epoch, up_to_seq } => Message::OpAck {
                epoch: Epoch(epoch),
                up_to_seq,
            },
            V2::CommandBatch { epoch, commands } => Message::CommandBatch {
                epoch: Epoch(epoch),
                commands,
            },
            V2::CommandAck { epoch, up_to_seq } => Message::CommandAck {
                epoch: Epoch(epoch),
                up_to_seq,
            },
            V2::Error { code, message } => Message::Error { code, message },
            V2::Clock { unix_ms } => Message::Clock { unix_ms },
            V2::RenewCertificate { csr_der } => Message::RenewCertificate { csr_der },
            V2::CertificateRenewed { cert_der } => Message::CertificateRenewed { cert_der },
            V2::RenewalRefused { reason } => Message::RenewalRefused { reason },
            V2::SiteHealth {
                outbox_head_seq,
                devices,
            } => Message::SiteHealth {
                outbox_head_seq,
                devices,
            },
            V2::CommandResume {
                from_epoch,
                epoch,
                after_seq,
            } => Message::CommandResume {
                from_epoch: Epoch(from_epoch),
                epoch: Epoch(epoch),
                after_seq,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{split_frame, MAX_FRAME_BYTES};

    fn batch() -> Message {
        Message::OpBatch {
            epoch: Epoch(7),
            ops: vec![Sequenced {
                seq: 1,
                payload: vec![1, 2, 3],
            }],
            outbox_head_seq: Some(9),
        }
    }

    #[test]
    fn both_versions_round_trip() {
        for version in SUPPORTED_VERSIONS {
            let frame = batch().encode(version).unwrap();
            let (body, used) = split_frame(&frame).unwrap().unwrap();
            assert_eq!(used, frame.len());
            let back = Message::decode(version, body).unwrap();
            match version {
                1 => assert!(matches!(
                    back,
                    Message::OpBatch {
                        outbox_head_seq: None,
                        ..
                    }
                )),
                _ => assert_eq!(back, batch()),
            }
        }
        assert!(batch().encode(PROTOCOL_VERSION + 1).is_err());
        let clock = Message::Clock {
            unix_ms: 1_764_000_000_000,
        };
        let err = clock.encode(1).unwrap_err().to_string();
        assert!(err.contains("clock") && err.contains("version 1"), "{err}");
        let frame = clock.encode(2).unwrap();
        let (body, _) = split_frame(&frame).unwrap().unwrap();
        assert_eq!(Message::decode(2, body).unwrap(), clock);
    }

    #[test]
    fn a_health_report_round_trips_in_version_2_only() {
        let health = Message::SiteHealth {
            outbox_head_seq: 12,
            devices: vec![DeviceHealth {
                name: "printer-1".into(),
                kind: "printer".into(),
                connected: false,
                since_unix_ms: 1_764_000_000_000,
                n_jobs_waiting: 3,
            }],
        };
        let frame = health.encode(2).unwrap();
        let (body, _) = split_frame(&frame).unwrap().unwrap();
        assert_eq!(Message::decode(2, body).unwrap(), health);
        assert!(health.encode(1).is_err());
    }

    #[test]
    fn a_command_resume_exists_from_version_3_only() {
        let resume = Message::CommandResume {
            from_epoch: Epoch(4),
            epoch: Epoch(5),
            after_seq: 17,
        };
        let frame = resume.encode(3).unwrap();
        let (body, _) = split_frame(&frame).unwrap().unwrap();
        assert_eq!(Message::decode(3, body).unwrap(), resume);
        for old in [1, 2] {
            let err = resume.encode(old).unwrap_err().to_string();
            assert!(err.contains("command_resume"), "{err}");
        }
        // A version-2 peer sending it anyway breaks the protocol it agreed to.
        let err = Message::decode(2, body).unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
        // Version 3 only appended: a version-2 frame reads the same under 3.
        let frame = batch().encode(2).unwrap();
        let (body, _) = split_frame(&frame).unwrap().unwrap();
        assert_eq!(Message::decode(3, body).unwrap(), batch());
    }

    #[test]
    fn a_huge_inner_length_is_refused_without_allocating_it() {
        // OpBatch (variant 0), epoch 7, then a Vec length claiming 2^60 items.
        let mut body = vec![0u8, 7, 253];
        body.extend_from_slice(&(1u64 << 60).to_be_bytes());
        let err = Message::decode(2, &body).unwrap_err();
        assert!(matches!(err, WireError::Malformed { .. }), "{err}");
        assert!(body.len() < MAX_FRAME_BYTES);
    }

    /// Receipts as a site sends them: one site, operator and station, LPNs in sequence.
    fn receipts() -> Message {
        use crate::domain::{Lpn, SiteId, Sku};
        use crate::op::{OpBody, OpRecord};
        use crate::station::ReceiptKind;
        let site = SiteId::new("osaka").unwrap();
        let ops = (1..=512u64)
            .map(|seq| Sequenced {
                seq,
                payload: crate::wire::payload::encode_op(&OpRecord {
                    site: site.clone(),
                    at_ms: 1_764_000_000_000 + 4_000 * seq as i64,
                    operator: "B-1042".into(),
                    station: "recv-2".into(),
                    body: OpBody::UnitReceived {
                        lpn: Lpn::new(format!("LPN-OSAKA-0001-{seq:09}")).unwrap(),
                        rma: None,
                        sku: Sku::new(["TEE-WHT-M", "JKT-DENIM-L", "CAP-NVY"][seq as usize % 3])
                            .unwrap(),
                        receipt: ReceiptKind::Matched,
                        parcel_ref: None,
                    },
                })
                .unwrap(),
            })
            .collect();
        Message::OpBatch {
            epoch: Epoch(7),
            ops,
            outbox_head_seq: Some(512),
        }
    }

    #[test]
    fn a_packed_batch_is_several_times_smaller_and_reads_back_the_same() {
        let plain = receipts().encode(3).unwrap();
        let packed = receipts().encode(4).unwrap();
        assert!(
            packed.len() * 4 < plain.len(),
            "{} bytes packed, {} plain",
            packed.len(),
            plain.len()
        );
        let (body, _) = split_frame(&packed).unwrap().unwrap();
        assert_eq!(Message::decode(4, body).unwrap(), receipts());
        // Unpacked bytes are version 3's: a version-3 body is not a packed one.
        let (plain_body, _) = split_frame(&plain).unwrap().unwrap();
        let err = Message::decode(4, plain_body).unwrap_err().to_string();
        assert!(err.contains("unpacking"), "{err}");
    }

    #[test]
    fn a_batch_encodes_borrowed_as_it_does_owned() {
        for head in [None, Some(0), Some(9), Some(1 << 33)] {
            let batch = Message::OpBatch {
                epoch: Epoch(7),
                ops: (1..=3)
                    .map(|seq| Sequenced {
                        seq,
                        payload: vec![seq as u8; 200],
                    })
                    .collect(),
                outbox_head_seq: head,
            };
            let borrowed = encode_body("borrowed", &V2OpBatch::of(&batch).unwrap()).unwrap();
            let owned = encode_body("owned", &V2::from(batch.clone())).unwrap();
            assert_eq!(borrowed, owned, "head {head:?}");
        }
        assert!(V2OpBatch::of(&Message::Clock { unix_ms: 1 }).is_none());
    }

    #[test]
    fn a_packed_frame_that_would_unpack_past_the_limit_is_refused() {
        // A few kilobytes that unpack to twice the frame limit.
        let bomb = zstd::bulk::compress(&vec![0u8; 2 * MAX_FRAME_BYTES], 19).unwrap();
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        let err = Message::decode(4, &bomb).unwrap_err();
        assert!(matches!(err, WireError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("unpacking"), "{err}");
    }
}
