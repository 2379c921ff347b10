//! A durable outbox append: one receipt (state, op, audit row) per fsynced transaction, as a
//! station does it.

use criterion::{criterion_group, criterion_main, Criterion};
use modori_agent::store;
use modori_agent::work::{self, Actor};
use modori_runtime::sqlite::Db;
use modori_shared::domain::{SiteId, Sku};
use modori_shared::station::{Effect, ReceiptKind};

fn outbox_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("agent.db"), &store::migrations()).expect("db");
    let site = SiteId::new("osaka").expect("site");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let s = site.clone();
    runtime
        .block_on(db.call(move |c| store::init(c, &s)))
        .expect("init");
    let effect = Effect::Receive {
        rma: None,
        sku: Sku::new("TEE-WHT-M").expect("sku"),
        receipt: ReceiptKind::Unidentified,
        parcel_ref: None,
    };
    let who = Actor::new("B-1", "recv-1");
    c.bench_function("outbox_append_durable", |b| {
        b.iter(|| {
            let (site, effect, who) = (site.clone(), effect.clone(), who.clone());
            runtime
                .block_on(db.call(move |c| work::record(c, &site, &who, &effect, 0)))
                .expect("recorded")
        })
    });
}

criterion_group!(benches, outbox_append);
criterion_main!(benches);
