//! Memory budget of the fence layer and of sync objects, measured with a counting global
//! allocator.
//!
//! * A pending fence with its shared state: at most 128 bytes, in one allocation.
//! * A chain node (its own fence state plus the link and its lookup index's slot): at most
//!   192 bytes.
//! * The lookup index a chain's newest node gets: at most 56 bytes a pending point when it is
//!   made, with room reserved for as many points again, which take nothing more.
//! * Cloning a consumer handle, merging one fence, taking the stub and signalling a fence
//!   nobody listens to allocate nothing.
//! * A pending timeline point of a syncobj: its chain node, at most 192 bytes; with a
//!   software timeline's fence behind it, at most 448.
//! * Seed 003's loop through a syncobj (import a sync file, export it, add it as a point,
//!   repeat) keeps the chain and the memory flat over 100,000 rounds once points signal.
//! * A reservation object allocates nothing until its first reservation; reserving room for
//!   4 fences takes at most 512 bytes (480: the writer's list and its contexts, three
//!   snapshot buffers, and the room to retire buffers and fences; see `resv/table.rs`); from
//!   then on appends within the reservation, replacements in place and `replace_fences`
//!   allocate nothing, however many.
//! * A syncobj timeline with 64 points pending, one looked up through the index every round
//!   and the oldest signalling, keeps the chain and the memory flat over 100,000 rounds.
//!
//! Counting is per thread (the test harness runs tests in parallel threads) and counts the
//! bytes requested from the allocator (`Layout::size`), not the allocator's own rounding;
//! bytes freed are counted too, for what stays allocated.
#![allow(unsafe_code)] // a `GlobalAlloc` impl is unsafe by definition

use dmabuf::fence::{Fence, FenceContext, chain, unwrap::merge};
use dmabuf::resv::{Resv, Usage};
use dmabuf::syncobj::{IfUnsubmitted, Point, Syncobj};
use dmabuf::{SyncFile, Timeline};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
    static FREED: Cell<usize> = const { Cell::new(0) };
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
        let _ = FREED.try_with(|f| f.set(f.get() + layout.size()));
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = FREED.try_with(|f| f.set(f.get() + layout.size()));
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

/// Bytes this thread has allocated and not freed.
fn live() -> usize {
    BYTES.with(Cell::get) - FREED.with(Cell::get)
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
fn the_lookup_index_takes_at_most_56_bytes_a_point_and_points_made_on_it_nothing_more() {
    const POINTS: u64 = 1000;
    let ctx = FenceContext::new("mem", "index");
    let fences: Vec<_> = (0..2 * POINTS).map(|_| ctx.next_fence()).collect();
    let mut head: Option<Fence> = None;
    for (i, (_, fence)) in fences.iter().take(POINTS as usize).enumerate() {
        head = Some(Fence::new_chain(head, fence.clone(), i as u64 + 1).unwrap());
    }
    let mut head = head.unwrap();
    // A lookup far down the chain walks it, and leaves the head indexed.
    let before = live();
    assert_eq!(head.find_seqno(1).unwrap().unwrap().seqno(), 1);
    let index = (live() - before) as u64 / POINTS;
    // Points made on the indexed head take slots the index reserved.
    let before = live();
    for (i, (_, fence)) in fences.iter().enumerate().skip(POINTS as usize) {
        head = Fence::new_chain(Some(head), fence.clone(), i as u64 + 1).unwrap();
    }
    let node = (live() - before) as u64 / POINTS;
    println!("lookup index: {index} bytes a pending point; points made on it: {node} bytes each");
    assert!(index <= 56, "the index takes {index} bytes a point");
    assert!(
        node <= 192,
        "a point made on an indexed node takes {node} bytes"
    );
    // Half the room used: the next lookup copies the index (dropping signalled points, here
    // none); lookups after it allocate nothing.
    assert_eq!(head.find_seqno(1).unwrap().unwrap().seqno(), 1);
    let (_, allocs, _) = measure(|| {
        for seqno in [1, POINTS, 2 * POINTS - 1] {
            assert_eq!(head.find_seqno(seqno).unwrap().unwrap().seqno(), seqno);
        }
    });
    assert_eq!(allocs, 0, "lookups through the index allocated");
    drop(fences);
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

#[test]
fn a_pending_syncobj_point_takes_at_most_192_bytes_and_448_with_its_timeline_fence() {
    const POINTS: u64 = 1000;
    let gpu = Timeline::new("mem");
    let ctx = FenceContext::new("mem", "syncobj");
    let timeline = Syncobj::new();
    timeline.add_point(gpu.create_fence(1).unwrap(), Point(1)); // warm the lazies
    let fences: Vec<_> = (0..POINTS).map(|_| ctx.next_fence()).collect();
    let before = live();
    for (i, (_, fence)) in fences.iter().enumerate() {
        timeline.add_point(fence.clone(), Point(2 + i as u64));
    }
    let node = (live() - before) as u64 / POINTS;
    let before = live();
    for i in 0..POINTS as u32 {
        let point = 2 + POINTS + u64::from(i);
        timeline.add_point(gpu.create_fence(2 + i).unwrap(), Point(point));
    }
    let with_fence = (live() - before) as u64 / POINTS;
    println!(
        "pending syncobj point: {node} bytes (chain node); {with_fence} with a software timeline's fence"
    );
    assert!(node <= 192, "a pending point takes {node} bytes");
    assert!(
        with_fence <= 448,
        "a pending point with its fence takes {with_fence} bytes"
    );
    assert_eq!(
        chain::iter(&timeline.fence().unwrap()).count() as u64,
        2 * POINTS + 1
    );
    drop(fences);
}

/// The nodes of a chain as linked now, without the collection a walk does.
fn links(head: Fence) -> usize {
    std::iter::successors(Some(head), Fence::chain_prev).count()
}

#[test]
fn seed_003s_loop_through_a_syncobj_stays_flat_over_100000_rounds() {
    const ROUNDS: u64 = 100_000;
    let engine = FenceContext::new("gpu", "seed003-syncobj");
    let binary = Syncobj::new();
    let timeline = Syncobj::new();
    let mut longest_chain = 0;
    let mut live_after_warm_up = 0;
    for round in 1..=ROUNDS {
        let (job, fence) = engine.next_fence();
        // A client's render fence comes in as a sync file, goes out again, and is added as
        // the timeline's next point, which a consumer takes back out as a sync file.
        binary.import_sync_file(&SyncFile::new(fence));
        let exported = binary.export_sync_file().expect("binary has a fence");
        timeline.add_point(exported.fence(), Point(round));
        let point = timeline
            .find_fence(Point(round), IfUnsubmitted::Fail)
            .expect("added");
        binary.import_sync_file(&SyncFile::new(point));
        job.signal();
        longest_chain = longest_chain.max(links(timeline.fence().unwrap()));
        if round == 1000 {
            live_after_warm_up = live();
        }
    }
    let grown = live().saturating_sub(live_after_warm_up);
    println!(
        "seed 003 through a syncobj: longest chain {longest_chain}, {grown} bytes grown after round 1000"
    );
    assert!(
        longest_chain <= 3,
        "the chain grew to {longest_chain} nodes"
    );
    assert!(
        grown <= 1024,
        "{grown} bytes stayed allocated over {ROUNDS} rounds"
    );
    assert_eq!(timeline.last_signaled_point(), Point(ROUNDS));
}

#[test]
fn a_reservation_allocates_only_when_it_reserves() {
    let ctxs: Vec<FenceContext> = (0..4)
        .map(|i| FenceContext::new("mem", format!("resv{i}")))
        .collect();
    let round = |resv: &Resv, rounds: u64| {
        let mut issuers = Vec::new();
        let fences: Vec<Vec<_>> = ctxs
            .iter()
            .map(|c| {
                (0..rounds)
                    .map(|_| {
                        let (s, f) = c.next_fence();
                        issuers.push(s);
                        f
                    })
                    .collect()
            })
            .collect();
        let (_, allocs, bytes) = measure(|| {
            let mut g = resv.lock_single();
            for r in 0..rounds as usize {
                if r == 0 {
                    g.reserve_fences(4).unwrap();
                }
                for (i, per_ctx) in fences.iter().enumerate() {
                    g.add_fence(&per_ctx[r], Usage::ALL[i]);
                }
            }
            g.replace_fences(ctxs[0].id(), &fences[1][0], Usage::Kernel);
        });
        drop(fences);
        (issuers, allocs, bytes)
    };
    // A first object, so that the validator (with the lockdep feature) and the reader slot
    // have made what they keep for the thread.
    let warm = Resv::new();
    let (issuers, _, _) = round(&warm, 10);
    let _ = warm.get_fences(Usage::Bookkeep);
    drop(issuers);

    let (resv, allocs, bytes) = measure(Resv::new);
    assert_eq!(
        (allocs, bytes),
        (0, 0),
        "a new reservation object allocated"
    );
    let (_, allocs, bytes) = measure(|| resv.lock_single().reserve_fences(4).unwrap());
    assert!(
        bytes <= 512,
        "reserving 4 fences took {bytes} bytes in {allocs} allocations"
    );

    // Reserved again (no growth: there is room), then 4 appends, 999 rounds of 4
    // replacements and a replace_fences.
    let (issuers, allocs, bytes) = round(&resv, 1000);
    assert_eq!(
        (allocs, bytes),
        (0, 0),
        "adding within a reservation allocated"
    );
    let _ = resv.get_fences(Usage::Bookkeep);
    drop(issuers);
}

#[test]
fn a_window_of_64_pending_points_looked_up_every_round_stays_flat_over_100000_rounds() {
    const ROUNDS: u64 = 100_000;
    const WINDOW: usize = 64;
    let engine = FenceContext::new("gpu", "window");
    let timeline = Syncobj::new();
    let mut jobs = VecDeque::new();
    let (mut longest_chain, mut peak_early, mut peak_late) = (0, 0, 0);
    for round in 1..=ROUNDS {
        let (job, fence) = engine.next_fence();
        timeline.add_point(fence, Point(round));
        jobs.push_back(job);
        if jobs.len() > WINDOW {
            jobs.pop_front().expect("more than the window").signal();
        }
        // A waiter looks up the point in the middle of the window.
        let point = round.saturating_sub(WINDOW as u64 / 2).max(1);
        let found = timeline
            .find_fence(Point(point), IfUnsubmitted::Fail)
            .expect("added");
        assert_eq!(found.seqno(), point);
        drop(found);
        longest_chain = longest_chain.max(links(timeline.fence().unwrap()));
        if (1000..2000).contains(&round) {
            peak_early = peak_early.max(live());
        } else if round > ROUNDS - 1000 {
            peak_late = peak_late.max(live());
        }
    }
    println!(
        "window of {WINDOW}: longest chain {longest_chain}, peak {peak_early} bytes in rounds \
         1000-1999, {peak_late} in the last 1000"
    );
    assert!(
        longest_chain <= WINDOW + 2,
        "the chain grew to {longest_chain} nodes"
    );
    assert!(
        peak_late <= peak_early + 1024,
        "{peak_late} bytes at the end against {peak_early} early on"
    );
    for job in jobs {
        job.signal();
    }
}
