//! Loom models of a reservation object's fence table (`resv/table.rs`): the per-slot sequence
//! count a reader checks without the lock, the length that publishes an append, and the walk
//! that starts over when the writer swaps in another table.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p dmabuf --lib --release -- tests::loom`.

use crate::fence::{Fence, FenceContext, Signaller};
use crate::resv::Usage;
use crate::resv::table::{PublishedTable, Table};
use loom::sync::Arc;
use loom::thread;

/// `n` pending fences and their issuers, which the model keeps until it ends: a dropped
/// issuer signals, and a walk passes signalled fences over.
fn fences(n: usize) -> (Vec<Signaller>, Vec<Fence>) {
    let ctx = FenceContext::new("loom", "resv");
    (0..n).map(|_| ctx.next_fence()).unzip()
}

/// Whether `got` is the entry `(fence, usage)`.
fn is(got: &(Fence, Usage), fence: &Fence, usage: Usage) -> bool {
    got.0.ptr_eq(fence) && got.1 == usage
}

/// A reader without the lock against a writer that replaces an entry in place and appends
/// another: every entry read is one the writer wrote whole (never the old fence with the new
/// usage or the other way round), and an append is seen complete or not at all.
#[test]
fn reader_vs_set_and_push() {
    loom::model(|| {
        let (_issuers, f) = fences(3);
        let table = Arc::new(Table::with_capacity(2));
        table.push(&f[0], Usage::Write);
        let writer = {
            let (table, replacement, appended) = (table.clone(), f[1].clone(), f[2].clone());
            thread::spawn(move || {
                table.set(0, &replacement, Usage::Read);
                table.push(&appended, Usage::Kernel);
            })
        };
        let len = table.len();
        let first = table
            .get(0, Usage::Bookkeep)
            .expect("slot 0 always holds a fence");
        assert!(
            is(&first, &f[0], Usage::Write) || is(&first, &f[1], Usage::Read),
            "a torn entry: {first:?}"
        );
        if len == 2 {
            let second = table.get(1, Usage::Bookkeep).expect("a published append");
            assert!(is(&second, &f[2], Usage::Kernel), "{second:?}");
        }
        // A query below the entry's usage passes it over, whichever entry it reads.
        if let Some(kernel_only) = table.get(0, Usage::Kernel) {
            panic!("no Kernel entry was ever in slot 0: {kernel_only:?}");
        }
        writer.join().unwrap();
        assert!(is(
            &table.get(0, Usage::Bookkeep).unwrap(),
            &f[1],
            Usage::Read
        ));
        assert_eq!(table.len(), 2);
    });
}

/// A reader's snapshot against a writer that swaps in a new table (a reservation that grew,
/// or a copy): the snapshot is one table's entries, the old or the new, never a mix, because
/// a walk that sees the swap starts over and throws away what it had.
#[test]
fn snapshot_vs_table_swap() {
    loom::model(|| {
        let (_issuers, f) = fences(3);
        let published = Arc::new(PublishedTable::new());
        let old = Table::with_capacity(1);
        old.push(&f[0], Usage::Write);
        published.publish(old);
        let writer = {
            let (published, kept, added) = (published.clone(), f[1].clone(), f[2].clone());
            thread::spawn(move || {
                // The new table is filled before it is published.
                let new = Table::with_capacity(2);
                new.push(&kept, Usage::Read);
                new.push(&added, Usage::Write);
                published.publish(new);
            })
        };
        let seen = published.snapshot(Usage::Bookkeep);
        let old_set = seen.len() == 1 && is(&seen[0], &f[0], Usage::Write);
        let new_set = seen.len() == 2
            && is(&seen[0], &f[1], Usage::Read)
            && is(&seen[1], &f[2], Usage::Write);
        assert!(old_set || new_set, "a mix of two tables: {seen:?}");
        writer.join().unwrap();
        let after = published.snapshot(Usage::Bookkeep);
        assert_eq!(after.len(), 2);
    });
}
