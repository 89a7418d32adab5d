//! Memory budget of the fence layer, measured with a counting global allocator.
//!
//! * A pending fence with its shared state: at most 128 bytes, in one allocation.
//! * A chain node (its own fence state plus the link): at most 192 bytes.
//! * Cloning a consumer handle, merging one fence, taking the stub and signalling a fence
//!   nobody listens to allocate nothing.
//!
//! Counting is per thread (the test harness runs tests in parallel threads) and counts the
//! bytes requested from the allocator (`Layout::size`), not the allocator's own rounding.
#![allow(unsafe_code)] // a `GlobalAlloc` impl is unsafe by definition

use dmabuf::fence::{Fence, FenceContext, unwrap::merge};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn count(size: usize) {
    // `try_with`: the allocator may run while this thread's locals are being torn down.
    let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
    let _ = BYTES.try_with(|b| b.set(b.get() + size));
}

// SAFETY: every call forwards to `System` with the caller's layout unchanged; counting touches
// only `const`-initialised thread-locals of `Cell<usize>`, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the (allocations, bytes) it made in this thread.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let (a0, b0) = (ALLOCS.with(Cell::get), BYTES.with(Cell::get));
    let out = f();
    let (a1, b1) = (ALLOCS.with(Cell::get), BYTES.with(Cell::get));
    (out, a1 - a0, b1 - b0)
}

#[test]
fn pending_fence_with_shared_state_takes_at_most_128_bytes() {
    let ctx = FenceContext::new("mem", "pending");
    let _warm = ctx.next_fence(); // per-context lazies, if any, are not per-fence cost
    let ((issuer, fence), allocs, bytes) = measure(|| ctx.next_fence());
    println!("pending fence: {bytes} bytes in {allocs} allocation(s)");
    assert_eq!(allocs, 1, "a fence is one heap block");
    assert!(bytes <= 128, "pending fence takes {bytes} bytes");
    issuer.signal();
    drop(fence);
}

#[test]
fn chain_node_takes_at_most_192_bytes() {
    let ctx = FenceContext::new("mem", "chain");
    let (_i0, f0) = ctx.next_fence();
    let (_i1, f1) = ctx.next_fence();
    let (_i2, f2) = ctx.next_fence();
    let first = Fence::new_chain(None, f0, 1).unwrap();
    let _warm = Fence::new_chain(Some(first.clone()), f1, 2).unwrap();
    let (node, allocs, bytes) = measure(|| Fence::new_chain(Some(first.clone()), f2, 3).unwrap());
    println!("chain node: {bytes} bytes in {allocs} allocation(s)");
    assert!(bytes <= 192, "chain node takes {bytes} bytes");
    drop(node);
}

#[test]
fn clone_merge_of_one_stub_and_quiet_signal_allocate_nothing() {
    let ctx = FenceContext::new("mem", "free");
    let (issuer, fence) = ctx.next_fence();
    let _ = Fence::stub(); // the global stub is created once per process

    let (c, allocs, _) = measure(|| fence.clone());
    assert_eq!(allocs, 0, "clone allocated");
    drop(c);

    let one = [fence.clone()];
    let (m, allocs, _) = measure(|| merge(&one));
    assert_eq!(allocs, 0, "merge of one fence allocated");
    assert!(m.ptr_eq(&fence));

    let (s, allocs, _) = measure(Fence::stub);
    assert_eq!(allocs, 0, "stub allocated");
    assert!(s.is_signaled());

    let (m, allocs, _) = measure(|| merge(&[]));
    assert_eq!(allocs, 0, "merge of nothing allocated");
    assert!(m.is_signaled());

    let (_, allocs, _) = measure(|| issuer.signal());
    assert_eq!(allocs, 0, "signal without callbacks allocated");
    assert!(fence.is_signaled());

    // With the validator compiled in, this thread's first annotated wait sets up its chain
    // cache: warm it once.
    Fence::stub().wait_for_signal();
    let (_, allocs, _) = measure(|| fence.wait());
    assert_eq!(allocs, 0, "wait on a signalled fence allocated");
}

#[test]
fn wait_on_a_pending_fence_allocates_nothing() {
    let ctx = FenceContext::new("mem", "wait");
    // With the validator compiled in, this thread's first annotated wait sets up its held-lock
    // stack: warm it with a wait that does not block.
    let (warm, warm_fence) = ctx.next_fence();
    warm.signal();
    warm_fence.wait_for_signal();
    let (issuer, fence) = ctx.next_fence();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(5));
        issuer.signal();
    });
    let (_, allocs, _) = measure(|| fence.wait());
    assert_eq!(allocs, 0, "a single blocking wait allocated");
    t.join().unwrap();
}
