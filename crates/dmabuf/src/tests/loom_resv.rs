//! Loom models of a reservation object's fence table (`resv/table.rs`, `resv/hazard.rs`):
//! readers that walk the published snapshot without the lock against a writer that replaces
//! entries, appends, grows the table and reuses the buffers readers let go of.
//!
//! What they check, in every interleaving loom explores:
//! * a reader sees one state the writer published, whole: never an entry with the fence of
//!   one state and the usage of another, never a mix of two states, never a fence that was
//!   there before and after the change it raced with missing;
//! * nothing a reader reads is freed or rewritten under it: the snapshot's words are loom
//!   cells (a writer reusing a buffer that a reader still walks is a reported race) and the
//!   fences are loom `Arc`s (taking a handle of a freed fence panics), and at the end every
//!   fence is released (loom reports a leaked `Arc`);
//! * a reader never waits: the reader path has no lock and no wait, and its loop runs again
//!   only after a writer published (loom would report a reader spinning on a writer).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p dmabuf --lib --release -- tests::loom`.

use crate::fence::{Fence, FenceContext, Signaller};
use crate::resv::Usage;
use crate::resv::table::{Published, Table};
use loom::sync::Arc;
use loom::thread;

/// `n` pending fences and their issuers, which the model keeps until it ends: a dropped
/// issuer signals, and that is not what these models are about.
fn fences(n: usize) -> (Vec<Signaller>, Vec<Fence>) {
    let ctx = FenceContext::new("loom", "resv");
    (0..n).map(|_| ctx.next_fence()).unzip()
}

/// One walk of the published snapshot: every entry, with a counted handle.
fn walk(published: &Published) -> Vec<(Fence, Usage)> {
    published.read(|entries| entries.map(|e| (e.fence(), e.usage())).collect())
}

/// Whether `seen` is exactly the state `state`.
fn is_state(seen: &[(Fence, Usage)], state: &[(&Fence, Usage)]) -> bool {
    seen.len() == state.len()
        && seen
            .iter()
            .zip(state)
            .all(|((f, u), (g, v))| f.ptr_eq(g) && u == v)
}

/// Which of `states` `seen` is (panics with the walk if none: a torn or mixed state).
fn which(seen: &[(Fence, Usage)], states: &[Vec<(&Fence, Usage)>]) -> usize {
    states
        .iter()
        .position(|s| is_state(seen, s))
        .unwrap_or_else(|| panic!("a state never published: {seen:?}"))
}

/// A reader against a writer that replaces an entry in place, appends one, grows the table
/// (new buffers, the old ones retired) and appends again: the walk is one of the three states,
/// whole, and the untouched first entry is in every one.
#[test]
fn reader_vs_replace_append_grow() {
    loom::model(|| {
        let (_issuers, f) = fences(4);
        let published = Arc::new(Published::new());
        let mut table = Table::new();
        table
            .try_regrow(
                &published,
                2,
                Some(vec![
                    (f[0].clone(), Usage::Write),
                    (f[1].clone(), Usage::Read),
                ]),
            )
            .unwrap();
        let writer = {
            let (published, f) = (published.clone(), f.clone());
            thread::spawn(move || {
                table.replace(&published, 1, &f[2], Usage::Kernel);
                table.try_regrow(&published, 4, None).unwrap();
                table.push(&published, &f[3], Usage::Bookkeep);
                table
            })
        };
        let seen = walk(&published);
        let states = [
            vec![(&f[0], Usage::Write), (&f[1], Usage::Read)],
            vec![(&f[0], Usage::Write), (&f[2], Usage::Kernel)],
            vec![
                (&f[0], Usage::Write),
                (&f[2], Usage::Kernel),
                (&f[3], Usage::Bookkeep),
            ],
        ];
        which(&seen, &states);
        let table = writer.join().unwrap();
        assert_eq!(which(&walk(&published), &states), 2);
        drop(seen);
        drop(table);
    });
}

/// A fence that only the table will hold: its issuer has signalled and is gone, and the
/// caller drops its own handle once the table has one.
fn table_only(ctx: &FenceContext) -> Fence {
    let (issuer, fence) = ctx.next_fence();
    issuer.signal();
    fence
}

/// What a walk saw, as seqnos and usages (the fences themselves are the table's alone).
fn seqnos(published: &Published) -> Vec<(u64, Usage)> {
    published.read(|entries| {
        entries
            .map(|e| {
                let f = e.fence();
                (f.seqno(), e.usage())
            })
            .collect()
    })
}

/// Two walks of one reader against a writer that replaces the same entry three times, so that
/// it runs out of spare buffers and reuses the ones readers let go of. The fences are held by
/// the table alone, so the graveyard is all that keeps a replaced one alive. Each walk is a
/// state the writer published, the second no older than the first; a buffer the reader still
/// walks is never rewritten (a loom race) and a fence it may still take is never freed (loom
/// panics on a handle of a freed `Arc`).
#[test]
fn reader_vs_buffer_reuse() {
    loom::model(|| {
        let ctx = FenceContext::new("loom", "resv");
        let published = Arc::new(Published::new());
        let mut table = Table::new();
        let first = vec![
            (table_only(&ctx), Usage::Write),
            (table_only(&ctx), Usage::Read),
        ];
        table.try_regrow(&published, 2, Some(first)).unwrap();
        let writer = {
            let published = published.clone();
            thread::spawn(move || {
                for _ in 0..3 {
                    let next = table_only(&ctx);
                    table.replace(&published, 1, &next, Usage::Read);
                }
                table
            })
        };
        let state = |walk: Vec<(u64, Usage)>| match walk[..] {
            [(1, Usage::Write), (n @ 2..=5, Usage::Read)] => n,
            _ => panic!("a state never published: {walk:?}"),
        };
        let first = state(seqnos(&published));
        let second = state(seqnos(&published));
        assert!(
            second >= first,
            "a walk saw an older state: {first} then {second}"
        );
        let table = writer.join().unwrap();
        assert_eq!(state(seqnos(&published)), 5);
        let stats = table.stats();
        assert_eq!(stats.published, 4);
        assert!(
            stats.reclaims >= 1,
            "the third replacement needs a reused buffer"
        );
        drop(table);
    });
}

/// Two readers against a writer that replaces an entry three times: with both readers inside
/// walks of two different retired snapshots, the writer finds no spare and waits until one of
/// them finishes (some interleaving must reach that wait); the readers never wait for it.
#[test]
fn two_readers_pin_both_spares() {
    static WAITED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loom::model(|| {
        let (_issuers, f) = fences(4);
        let published = Arc::new(Published::new());
        let mut table = Table::new();
        table
            .try_regrow(&published, 1, Some(vec![(f[0].clone(), Usage::Read)]))
            .unwrap();
        let states: Vec<Vec<(&Fence, Usage)>> =
            (0..4).map(|i| vec![(&f[i], Usage::Read)]).collect();
        let reader = {
            let (published, f) = (published.clone(), f.clone());
            thread::spawn(move || {
                let seen = walk(&published);
                let states: Vec<Vec<(&Fence, Usage)>> =
                    (0..4).map(|i| vec![(&f[i], Usage::Read)]).collect();
                which(&seen, &states);
            })
        };
        let writer = {
            let (published, f) = (published.clone(), f.clone());
            thread::spawn(move || {
                for g in &f[1..4] {
                    table.replace(&published, 0, g, Usage::Read);
                }
                table
            })
        };
        which(&walk(&published), &states);
        reader.join().unwrap();
        let table = writer.join().unwrap();
        assert_eq!(which(&walk(&published), &states), 3);
        WAITED.fetch_add(table.stats().waits, std::sync::atomic::Ordering::Relaxed);
        drop(table);
    });
    assert!(
        WAITED.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no interleaving made the writer wait for a reader"
    );
}
