//! Frame encode/decode of a full op batch, and a disposition decision.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use modori_shared::domain::{Epoch, Grade, Lpn, SiteId, Sku};
use modori_shared::op::{DispositionRule, OpBody, OpRecord};
use modori_shared::station::ReceiptKind;
use modori_shared::sync::BATCH_OPS_MAX_DEFAULT;
use modori_shared::wire::messages::{Message, Sequenced};
use modori_shared::wire::payload::encode_op;
use modori_shared::wire::{split_frame, PROTOCOL_VERSION};

fn batch() -> Message {
    let site = SiteId::new("osaka").expect("site");
    let ops = (1..=BATCH_OPS_MAX_DEFAULT as u64)
        .map(|seq| Sequenced {
            seq,
            payload: encode_op(&OpRecord {
                site: site.clone(),
                at_ms: 1_764_000_000_000,
                operator: "B-1234".into(),
                station: "recv-1".into(),
                body: OpBody::UnitReceived {
                    lpn: Lpn::new(format!("LPN-OSAKA-1A2B-{seq:07}K")).expect("lpn"),
                    rma: None,
                    sku: Sku::new("TEE-WHT-M").expect("sku"),
                    receipt: ReceiptKind::Matched,
                    parcel_ref: None,
                },
            })
            .expect("encodes"),
        })
        .collect();
    Message::OpBatch {
        epoch: Epoch(42),
        ops,
        outbox_head_seq: Some(BATCH_OPS_MAX_DEFAULT as u64),
    }
}

fn frames(c: &mut Criterion) {
    let message = batch();
    let frame = message.encode(PROTOCOL_VERSION).expect("encodes");
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Elements(BATCH_OPS_MAX_DEFAULT as u64));
    group.bench_function("encode_op_batch_512", |b| {
        b.iter(|| message.encode(PROTOCOL_VERSION).expect("encodes"))
    });
    group.bench_function("decode_op_batch_512", |b| {
        b.iter(|| {
            let (body, _) = split_frame(&frame).expect("frame").expect("whole");
            Message::decode(PROTOCOL_VERSION, body).expect("decodes")
        })
    });
    group.finish();
}

fn disposition(c: &mut Criterion) {
    let mut rules = DispositionRule::defaults();
    rules.push(DispositionRule {
        category: Some("electronics".into()),
        grade: Grade::B,
        disposition: modori_shared::domain::Disposition::Refurbish,
    });
    c.bench_function("disposition_decision", |b| {
        b.iter(|| DispositionRule::propose(&rules, Some("electronics"), Grade::B))
    });
}

criterion_group!(benches, frames, disposition);
criterion_main!(benches);
