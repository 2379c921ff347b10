//! Hostile frames cannot make the decoder allocate what they claim: a counting allocator
//! measures the peak while they are decoded.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use modori_shared::wire::messages::Message;
use modori_shared::wire::{split_frame, WireError, MAX_FRAME_BYTES};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated above the starting level while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

// One test function: the counters are process-wide, so parallel tests would blur them.
#[test]
fn hostile_frames_are_refused_within_bounded_memory() {
    // 1. A length prefix over the limit: refused from the header alone.
    let mut huge = ((MAX_FRAME_BYTES as u32) + 1).to_be_bytes().to_vec();
    huge.extend_from_slice(&[0; 64]);
    let (result, peak) = peak_during(|| split_frame(&huge).map(|f| f.map(|(b, n)| (b.len(), n))));
    assert!(
        matches!(result, Err(WireError::FrameTooLarge { .. })),
        "{result:?}"
    );
    assert!(peak < 2 * MAX_FRAME_BYTES, "peak {peak}");

    // 2. A frame under the limit whose inner Vec length claims 2^60 items, in each version.
    for version in [1u16, 2] {
        let mut body = vec![0u8, 7, 253]; // OpBatch, epoch 7, then a u64 varint length.
        body.extend_from_slice(&(1u64 << 60).to_be_bytes());
        body.extend_from_slice(&[0; 128]);
        let (result, peak) = peak_during(|| Message::decode(version, &body));
        assert!(
            matches!(result, Err(WireError::Malformed { .. })),
            "{result:?}"
        );
        assert!(peak < 2 * MAX_FRAME_BYTES, "version {version}: peak {peak}");
    }

    // 3. A frame whose payload bytes claim to be just under the limit while the body is short.
    let mut body = vec![0u8, 7, 1, 1, 252];
    body.extend_from_slice(&((MAX_FRAME_BYTES as u32) - 8).to_be_bytes());
    let (result, peak) = peak_during(|| Message::decode(2, &body));
    assert!(result.is_err(), "{result:?}");
    assert!(peak < 2 * MAX_FRAME_BYTES, "peak {peak}");
}
