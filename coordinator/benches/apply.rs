//! The coordinator's apply of one full batch (one durable transaction), and a routing decision
//! over the nine sites for every store.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use modori_coordinator::fleet::Fleet;
use modori_coordinator::routing::nearest_site;
use modori_coordinator::store;
use modori_shared::domain::{Epoch, Lpn, SiteId, Sku};
use modori_shared::op::{OpBody, OpRecord};
use modori_shared::station::ReceiptKind;
use modori_shared::sync::BATCH_OPS_MAX_DEFAULT;
use modori_shared::wire::messages::Sequenced;
use modori_shared::wire::payload::encode_op;

fn apply_batch(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = rusqlite::Connection::open(dir.path().join("coordinator.db")).expect("db");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("full");
    store::migrations()
        .to_latest(&mut conn)
        .expect("migrations");
    store::init(&mut conn).expect("init");
    let site = SiteId::new("osaka").expect("site");
    let mut next_seq = 1u64;
    let mut group = c.benchmark_group("coordinator");
    group.throughput(Throughput::Elements(BATCH_OPS_MAX_DEFAULT as u64));
    group.bench_function("apply_batch_512_durable", |b| {
        b.iter(|| {
            let batch: Vec<Sequenced> = (next_seq..next_seq + BATCH_OPS_MAX_DEFAULT as u64)
                .map(|seq| Sequenced {
                    seq,
                    payload: encode_op(&OpRecord {
                        site: site.clone(),
                        at_ms: 0,
                        operator: "B-1".into(),
                        station: "recv-1".into(),
                        body: OpBody::UnitReceived {
                            lpn: Lpn::new(format!("LPN-OSAKA-0001-{seq:09}")).expect("lpn"),
                            rma: None,
                            sku: Sku::new("TEE-WHT-M").expect("sku"),
                            receipt: ReceiptKind::Matched,
                            parcel_ref: None,
                        },
                    })
                    .expect("encodes"),
                })
                .collect();
            next_seq += BATCH_OPS_MAX_DEFAULT as u64;
            store::apply_op_batch(&mut conn, &site, Epoch(1), &batch, 0).expect("applied")
        })
    });
    group.finish();
}

fn routing(c: &mut Criterion) {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let fleet =
        Fleet::load(&configs.join("sites.toml"), &configs.join("stores.toml")).expect("fleet");
    c.bench_function("routing_decision_all_stores", |b| {
        b.iter(|| {
            fleet
                .stores
                .iter()
                .filter_map(|s| nearest_site(&fleet.sites, s.location))
                .count()
        })
    });
}

criterion_group!(benches, apply_batch, routing);
criterion_main!(benches);
