//! sync_file merge and info, the kernel against the in-process model: one script runs on real
//! kernel sync_files (exported from vgem buffers holding pending vgem fences, signalled on
//! demand) and on library [`SyncFile`]s built from library fences, and everything the two
//! report must agree with `==`: the leaves `SYNC_IOC_FILE_INFO` lists, each leaf's status and
//! whether it carries a timestamp, the overall status of the filled call, the status of the
//! file's own fence (the `num_fences == 0` query), `poll` readiness, a zero-timeout wait's
//! errno, and the name given at merge.
//!
//! Names aside: generated file names and leaf driver/timeline names are not compared, since
//! the kernel's carry vgem's fence contexts and the library's its own. What is compared is
//! whether a leaf is a private stub (driver and timeline `stub`), which both give for a merge
//! whose inputs had all signalled.
//!
//! vgem gives every fence a fence context of its own, so the selftests' and igt's cases where
//! points of one sw_sync timeline collapse into one leaf cannot be built; what collapses
//! instead is the same fence reached twice (a file merged with itself, a merge merged with one
//! of its parts). vgem fences never carry an error (the signal ioctl and vgem's own ten-second
//! timeout both signal without one), so the error-status cases (selftests `test_fence_*` with
//! `sw_sync` timeline close, igt `timeline_closed`) are not ported here; the library's side of
//! them is in `dmabuf`'s own `sync_file` tests.
//!
//! Each world's files, the pending fences behind them and what is looked at are
//! `common::diff`'s, which `syncobj_diff` shares.
//!
//! `SyncFileFd::info` is the kernel's two-call pattern: one call with `num_fences == 0` for
//! the count, one with an array of exactly that many entries to fill.
//!
//! Each test needs the vgem driver and is ignored unless asked for (`--include-ignored`); it
//! runs for real in the qemu guest (Linux 6.12) and fails where vgem is missing (see `common`).

mod common;
use common::diff::{KernelFiles, LibraryFiles, P, S, STUB, Seen, SyncFiles, agree};
use common::{no_leak, vgem};
use dmabuf::SyncFile;
use dmabuf_linux::{Error, FenceStatus, SyncFileFd};
use rustix::fd::AsFd;

/// One world's sync files, by index ([`SyncFiles`]), and their merge.
trait World: SyncFiles {
    /// `SYNC_IOC_MERGE` of files `a` and `b`; returns the new file's index.
    fn merge(&mut self, name: &str, a: usize, b: usize) -> usize;
}

/// The kernel: vgem fences, `SyncFileFd`s.
impl World for KernelFiles<'_> {
    fn merge(&mut self, name: &str, a: usize, b: usize) -> usize {
        let merged = self.get(a).merge(name, self.get(b)).expect("merge");
        self.add(merged, !name.is_empty())
    }
}

/// The library: software fences, [`SyncFile`]s.
impl World for LibraryFiles {
    fn merge(&mut self, name: &str, a: usize, b: usize) -> usize {
        let merged = SyncFile::merge(name, self.get(a), self.get(b));
        self.add(merged, !name.is_empty())
    }
}

/// Runs `script` in the kernel and in the library, asserts they agree, and returns what the
/// library saw (for the expectations).
fn both<T: PartialEq + std::fmt::Debug>(script: impl Fn(&mut dyn World) -> T) -> T {
    let vgem = vgem();
    let k = script(&mut KernelFiles::new(&vgem));
    agree(k, script(&mut LibraryFiles::default()))
}

/// Three pending fences merged as `merge(c, merge(b, a))`, signalled out of order: the merge
/// lists all three (by fence context, whatever the merge order) and stays pending until the
/// last; its inputs stay valid and unchanged.
fn three_fences(w: &mut dyn World) -> Vec<Seen> {
    let (a, b, c) = (w.pending(), w.pending(), w.pending());
    let ba = w.merge("ba", b, a);
    let cba = w.merge("cba", c, ba);
    let mut out = vec![w.seen(cba)];
    for f in [b, c, a] {
        w.signal(f);
        out.push(w.seen(cba));
    }
    out.extend([w.seen(ba), w.seen(a)]);
    out
}

// ports selftests sync: test_fence_multi_timeline_wait (igt sw_sync: sync_multi_timeline_wait,
// alloc_merge_fence), three vgem fences for three timelines
#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn merge_of_three_pending_fences_agrees_as_each_signals() {
    no_leak(|| {
        let l = both(three_fences);
        assert_eq!(
            l,
            [
                Seen::pending(3).named("cba"),
                Seen::of(FenceStatus::Pending, vec![P, S, P]).named("cba"),
                Seen::of(FenceStatus::Pending, vec![P, S, S]).named("cba"),
                Seen::of(FenceStatus::Signaled, vec![S, S, S]).named("cba"),
                Seen::of(FenceStatus::Signaled, vec![S, S]).named("ba"),
                Seen::of(FenceStatus::Signaled, vec![S]),
            ]
        );
    });
}

/// A file merged with itself.
fn same_fence(w: &mut dyn World) -> Vec<Seen> {
    let f = w.pending();
    let ff = w.merge("ff", f, f);
    let before = w.seen(ff);
    w.signal(f);
    // Merged again once signalled: all inputs signalled.
    let done = w.merge("done", f, f);
    vec![before, w.seen(ff), w.seen(done)]
}

// ports selftests sync: test_fence_merge_same_fence (igt sw_sync: sync_merge_same)
#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn merge_of_a_file_with_itself_agrees() {
    no_leak(|| {
        let l = both(same_fence);
        assert_eq!(
            l,
            [
                Seen::pending(1).named("ff"),
                Seen::of(FenceStatus::Signaled, vec![S]).named("ff"),
                Seen::of(FenceStatus::Signaled, vec![STUB]).named("done"),
            ]
        );
    });
}

/// A merge merged with one of its own parts, and with its mirror image: the same fences
/// reached twice count once.
fn merge_with_a_part(w: &mut dyn World) -> Vec<Seen> {
    let (a, b) = (w.pending(), w.pending());
    let ab = w.merge("ab", a, b);
    let aba = w.merge("ab+a", ab, a);
    let ba = w.merge("ba", b, a);
    let abba = w.merge("ab+ba", ab, ba);
    let mut out = vec![w.seen(aba), w.seen(abba)];
    w.signal(a);
    out.extend([w.seen(aba), w.seen(abba)]);
    w.signal(b);
    out.extend([w.seen(aba), w.seen(abba)]);
    out
}

// ports selftests sync: test_fence_one_timeline_merge, adapted: vgem has one context per
// fence, so instead of points of one timeline collapsing, the same fence reached through two
// inputs collapses (merge(merge(a, b), a) lists a and b once each)
#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn merge_of_a_merge_with_its_own_parts_agrees() {
    no_leak(|| {
        let l = both(merge_with_a_part);
        assert_eq!(
            l,
            [
                Seen::pending(2).named("ab+a"),
                Seen::pending(2).named("ab+ba"),
                Seen::of(FenceStatus::Pending, vec![S, P]).named("ab+a"),
                Seen::of(FenceStatus::Pending, vec![S, P]).named("ab+ba"),
                Seen::of(FenceStatus::Signaled, vec![S, S]).named("ab+a"),
                Seen::of(FenceStatus::Signaled, vec![S, S]).named("ab+ba"),
            ]
        );
    });
}

/// Merges with signalled inputs: signalled leaves are dropped; with nothing pending the
/// result is one private stub carrying the latest input's signal time. Returns what was seen
/// and whether that time is the latest input's.
fn merge_with_signalled(w: &mut dyn World) -> (Vec<Seen>, bool) {
    let (a, b) = (w.pending(), w.pending());
    w.signal(a);
    let ab = w.merge("ab", a, b);
    let ba = w.merge("ba", b, a);
    // Unnamed: the name comes from the fence, which differs between the worlds.
    let unnamed = w.merge("", a, b);
    let mut out = vec![w.seen(ab), w.seen(ba), w.seen(unnamed)];
    w.signal(b);
    out.push(w.seen(ab));
    let both_done = w.merge("both done", a, b);
    out.push(w.seen(both_done));
    let stamp = |f: usize| w.info(f).fences[0].timestamp.expect("signalled leaf");
    let latest = stamp(a).max(stamp(b));
    (out, stamp(both_done) == latest)
}

// ports igt sw_sync: sync_expired_merge (merging fences that have already signalled), and the
// merge rule of dropping signalled leaves
#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn merge_with_signalled_fences_agrees() {
    no_leak(|| {
        let (l, latest) = both(merge_with_signalled);
        assert!(
            latest,
            "the all-signalled merge carries the latest signal time"
        );
        assert_eq!(
            l,
            [
                Seen::pending(1).named("ab"),
                Seen::pending(1).named("ba"),
                Seen::pending(1),
                Seen::of(FenceStatus::Signaled, vec![S]).named("ab"),
                Seen::of(FenceStatus::Signaled, vec![STUB]).named("both done"),
            ]
        );
    });
}

// ports igt sw_sync: sync_merge_invalid (a DRM fd and a plain file cannot be merged): merge
// takes a `SyncFileFd`, so the refusal is at `SyncFileFd::from_fd`, with the fd given back
#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn a_drm_fd_is_not_a_sync_file_and_comes_back() {
    no_leak(|| {
        let vgem = vgem();
        let fd = vgem.as_fd().try_clone_to_owned().unwrap();
        let (err, back) = SyncFileFd::from_fd(fd).unwrap_err();
        assert!(
            matches!(err, Error::NotSyncFile { errno } if errno == rustix::io::Errno::INVAL || errno == rustix::io::Errno::NOTTY),
            "{err:?}"
        );
        let (err, _back) = dmabuf_linux::DmaBufFd::from_fd(back).unwrap_err();
        assert!(matches!(err, Error::NotDmaBuf { .. }), "{err:?}");
    });
}

/// `ROUNDS` merges of a growing file with fences picked by a fixed xorshift sequence, then
/// every fence signalled in turn. Returns what was seen after each signal and the number of
/// distinct fences merged.
fn random_merges(w: &mut dyn World) -> (Vec<Seen>, usize) {
    const FENCES: usize = 8;
    const ROUNDS: usize = 24;
    let fences: Vec<usize> = (0..FENCES).map(|_| w.pending()).collect();
    let mut x: u32 = 0x2545_f491;
    let mut pick = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        fences[x as usize % FENCES]
    };
    let first = pick();
    let mut used = vec![first];
    let mut merged = first;
    for _ in 0..ROUNDS {
        let f = pick();
        merged = w.merge("random", merged, f);
        if !used.contains(&f) {
            used.push(f);
        }
    }
    let mut out = vec![w.seen(merged)];
    for &f in &fences {
        w.signal(f);
        out.push(w.seen(merged));
    }
    (out, used.len())
}

// ports selftests sync: test_merge_stress_random_merge (igt sw_sync: sync_random_merge),
// scaled down: 8 vgem fences for 32 timelines, 24 merges for 32768
#[test]
#[ignore = "needs vgem (runs in the qemu guest)"]
fn random_merges_agree_and_count_each_fence_once() {
    no_leak(|| {
        let (l, distinct) = both(random_merges);
        assert!(distinct > 1, "the sequence picks several fences");
        assert_eq!(l[0], Seen::pending(distinct).named("random"));
        let last = &l[l.len() - 1];
        assert_eq!(
            *last,
            Seen::of(FenceStatus::Signaled, vec![S; distinct]).named("random")
        );
        // Pending until the last merged fence signals.
        let pending = l
            .iter()
            .filter(|s| s.status == FenceStatus::Pending)
            .count();
        assert!((1..l.len()).contains(&pending), "{pending}");
    });
}
