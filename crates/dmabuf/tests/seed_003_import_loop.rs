//! Seed 003: an export/import loop stays flat and bounded; nesting containers is refused.
//! The example `seed_003_import_loop` tells the story; this checks its two halves.

#[path = "../examples/seed_003_import_loop.rs"]
#[allow(dead_code)]
mod example;

use dmabuf::Error;
use dmabuf::buf::exporters::SystemHeap;
use dmabuf::fence::{Fence, FenceContext, alloc_contexts};
use std::num::NonZeroU64;

#[test]
fn nesting_the_imported_fence_in_an_array_is_refused() {
    let engine = FenceContext::new("gpu", "seed003");
    let (_a, a) = engine.next_fence();
    let (_b, b) = engine.next_fence();
    let array = Fence::new_array(vec![a, b], alloc_contexts(NonZeroU64::MIN), 1).expect("leaves");
    let (_c, c) = engine.next_fence();
    let nested = Fence::new_array(
        vec![array.clone(), c.clone()],
        alloc_contexts(NonZeroU64::MIN),
        1,
    );
    assert_eq!(nested.err(), Some(Error::ContainerMember));
    assert_eq!(
        Fence::new_chain(Some(array), c, 1).err(),
        None,
        "a chain may hold an array"
    );
}

#[test]
fn the_export_import_loop_stays_flat_and_bounded_on_a_small_stack() {
    let buf = SystemHeap::new().alloc(4096).expect("buffer");
    let outcome = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let outcome = example::fixed_loop(&buf, 5_000);
            drop(buf);
            outcome
        })
        .expect("thread")
        .join()
        .expect("no stack overflow");
    assert!(outcome.flat, "{outcome:?}");
    assert!(outcome.max_leaves <= 3, "one leaf per engine: {outcome:?}");
    assert!(
        outcome.resv_fences <= 3 * 2,
        "bounded by the engines: {outcome:?}"
    );
}
