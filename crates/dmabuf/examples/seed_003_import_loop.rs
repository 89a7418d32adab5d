//! Seed 003: a sync-file import loop must not build ever-deeper fence containers.
//!
//! The 2020 proposal to import sync files into a buffer first wrapped the buffer's current
//! write fence and the imported one into a new fence array, and made that the buffer's write
//! fence. User space that exports and re-imports in a loop then builds an array holding an
//! array holding an array…: memory grows without bound, and dropping the outermost one frees
//! the nest recursively, deep enough to overflow the stack.
//!
//! This library does not let that shape exist:
//! * a fence array or chain refuses a container as a member ([`Error::ContainerMember`]) —
//!   the broken pattern fails at its first nesting step;
//! * merge and export flatten (one array of leaves, one entry per context, signalled leaves
//!   dropped), and import adds each leaf to the reservation object on its own, where a later
//!   fence of the same context replaces the earlier one.
//!
//! So the fixed pattern — export, import, repeat, as often as user space likes — keeps the
//! buffer's fence set as small as the number of timelines feeding it, every exported fence
//! one level deep, and the final drop shallow.
//!
//! Run: `cargo run -p dmabuf --example seed_003_import_loop`.

use dmabuf::Error;
use dmabuf::buf::DmaBuf;
use dmabuf::buf::exporters::SystemHeap;
use dmabuf::fence::{Fence, FenceContext, alloc_contexts, unwrap::leaves};
use dmabuf::resv::{Access, Usage};
use std::num::NonZeroU64;

/// How many export/import rounds the fixed loop runs.
const ROUNDS: usize = 20_000;

/// The broken pattern: nest the buffer's write fence and the imported fence in a new array.
fn broken_import(current: &Fence, imported: &Fence) -> Result<Fence, Error> {
    let ctx = alloc_contexts(NonZeroU64::MIN);
    Fence::new_array(vec![current.clone(), imported.clone()], ctx, 1)
}

/// What the fixed loop leaves behind.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Fences in the buffer's reservation object at the end.
    pub resv_fences: usize,
    /// The most leaves any exported sync file had.
    pub max_leaves: usize,
    /// Whether every exported fence was at most one container deep.
    pub flat: bool,
}

/// The fixed pattern: `rounds` of (three engines each add a job, user space exports the
/// buffer's fences and imports them back as a write).
pub fn fixed_loop(buf: &DmaBuf, rounds: usize) -> Outcome {
    let engines: Vec<FenceContext> = ["gfx", "compute", "copy"]
        .iter()
        .map(|e| FenceContext::new("gpu", *e))
        .collect();
    let mut max_leaves = 0;
    let mut flat = true;
    let mut pending = Vec::new();
    for round in 0..rounds {
        for engine in &engines {
            let (job, fence) = engine.next_fence();
            let mut g = buf.resv().lock_single();
            g.reserve_fences(1).expect("reserve");
            g.add_fence(&fence, Usage::Write);
            drop(g);
            pending.push(job);
        }
        let exported = buf.export_sync_file(Access::Write);
        let fence = exported.fence();
        flat &= leaves(&fence).all(|leaf| !leaf.is_container());
        max_leaves = max_leaves.max(exported.num_fences());
        buf.import_sync_file(&exported, Access::Write)
            .expect("import");
        // The engines finish their older jobs as they go.
        if round % 4 == 3 {
            pending.drain(..).for_each(|job| {
                job.signal();
            });
        }
    }
    pending.into_iter().for_each(|job| {
        job.signal();
    });
    let resv_fences = buf.resv().lock_single().num_fences();
    Outcome {
        resv_fences,
        max_leaves,
        flat,
    }
}

fn main() {
    println!("== the broken pattern: nest the write fence and the import in a new array");
    let engine = FenceContext::new("gpu", "gfx");
    let (a_job, a) = engine.next_fence();
    let (b_job, b) = engine.next_fence();
    let once = broken_import(&a, &b).expect("one level is a plain array of leaves");
    let (c_job, c) = engine.next_fence();
    match broken_import(&once, &c) {
        Err(e) => println!("the second round is refused: {e} (errno {})", e.errno()),
        Ok(_) => println!("nested: the library let a container into a container"),
    }
    for job in [a_job, b_job, c_job] {
        job.signal();
    }

    println!("\n== the fixed pattern: export, import, repeat {ROUNDS} times");
    let buf = SystemHeap::new().alloc(4096).expect("buffer");
    // Run on a small stack: nothing in the loop or in the final drop may recurse per round.
    let outcome = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let outcome = fixed_loop(&buf, ROUNDS);
            drop(buf);
            outcome
        })
        .expect("thread")
        .join()
        .expect("no stack overflow");
    println!(
        "fences left in the buffer: {} (one per engine at most); largest export: {} leaves; \
         every export flat: {}",
        outcome.resv_fences, outcome.max_leaves, outcome.flat
    );
}
