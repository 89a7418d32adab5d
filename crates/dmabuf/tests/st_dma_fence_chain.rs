//! Port of the kernel's fence-chain selftests (`drivers/dma-buf/st-dma-fence-chain.c`), one
//! `#[test]` per upstream case.
//!
//! As upstream, every chain node gets its own mock fence and has signalling enabled when it is
//! built; node `i` is at seqno `i + 1` unless a test says otherwise. Here all mock fences share
//! one [`FenceContext`] (upstream they all sit on context 0, which is the stub's here).
//! `Ok(None)` from [`Fence::find_seqno`] is the kernel's `NULL` result.

use dmabuf::fence::{Fence, FenceContext, Signaller};
use dmabuf::{Errno, Error};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Upstream `CHAIN_SZ`.
const CHAIN_SZ: usize = 4096;

/// How long `find_race` hammers the chain (upstream: 5 s; shortened to keep the suite quick).
const FIND_RACE_TIME: Duration = Duration::from_secs(2);

/// A small deterministic PRNG (xorshift64*), so runs are repeatable without the rand crate.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Never zero: xorshift would stay at zero forever.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Upstream `struct fence_chains`: the mock fences (with their issuers) and the chain nodes.
struct FenceChains {
    /// Issuers, taken when signalled (a slot is `None` once its fence has signalled). Behind
    /// mutexes so racing threads can signal the same fence, the second being a no-op.
    issuers: Vec<Mutex<Option<Signaller>>>,
    fences: Vec<Fence>,
    chains: Vec<Fence>,
    tail: Fence,
}

fn seqno_inc(i: usize) -> u64 {
    i as u64 + 1
}

fn seqno_inc2(i: usize) -> u64 {
    2 * i as u64 + 2
}

impl FenceChains {
    /// Upstream `fence_chains_init()`.
    fn new(count: usize, seqno_fn: fn(usize) -> u64) -> Self {
        assert!(count > 0);
        let ctx = FenceContext::new("mock", "mock");
        let mut issuers = Vec::with_capacity(count);
        let mut fences = Vec::with_capacity(count);
        let mut chains: Vec<Fence> = Vec::with_capacity(count);
        for i in 0..count {
            let (issuer, fence) = ctx.fence(i as u64 + 1);
            let node = Fence::new_chain(chains.last().cloned(), fence.clone(), seqno_fn(i))
                .expect("a plain fence is a valid chain member");
            node.enable_sw_signaling();
            issuers.push(Mutex::new(Some(issuer)));
            fences.push(fence);
            chains.push(node);
        }
        let tail = chains[count - 1].clone();
        Self {
            issuers,
            fences,
            chains,
            tail,
        }
    }

    fn len(&self) -> usize {
        self.chains.len()
    }

    /// Signals mock fence `i`; a no-op if it already has (upstream `dma_fence_signal()` on a
    /// signalled fence).
    fn signal(&self, i: usize) {
        let issuer = self.issuers[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(issuer) = issuer {
            issuer.signal();
        }
    }

    /// Upstream `fence_chains_fini()`: signal every mock fence, then release everything. Once
    /// every contained fence has signalled, so must the tail.
    fn fini(self) {
        for i in 0..self.len() {
            self.signal(i);
        }
        assert!(self.fences.iter().all(Fence::is_signaled));
        assert!(
            self.tail.is_signaled(),
            "tail still pending after every fence signalled"
        );
    }
}

/// `find_seqno` result as the node it names (`None` is upstream's `NULL`).
fn find(fence: &Fence, seqno: u64) -> Option<Fence> {
    fence
        .find_seqno(seqno)
        .unwrap_or_else(|e| panic!("find_seqno({}:{seqno}) reported {e}", fence.seqno()))
}

fn same(found: &Option<Fence>, expected: &Fence) -> bool {
    found.as_ref().is_some_and(|f| f.ptr_eq(expected))
}

// ports st-dma-fence-chain: sanitycheck
#[test]
fn sanitycheck() {
    let ctx = FenceContext::new("mock", "mock");
    let (issuer, f) = ctx.fence(1);
    let chain = Fence::new_chain(None, f.clone(), 1).unwrap();
    chain.enable_sw_signaling();
    assert!(!chain.is_signaled());
    issuer.signal();
    assert!(f.is_signaled());
    assert!(chain.is_signaled());
    assert!(chain.contained().ptr_eq(&f));
    drop(f);
    drop(chain);
}

// ports st-dma-fence-chain: find_seqno
#[test]
fn find_seqno() {
    let fc = FenceChains::new(64, seqno_inc);

    // Seqno 0 is a no-op: the fence is left as it was.
    assert!(same(&find(&fc.tail, 0), &fc.tail));

    for i in 0..fc.len() {
        let seqno = i as u64;
        let found = find(&fc.tail, seqno + 1);
        assert!(
            same(&found, &fc.chains[i]),
            "find_seqno({}:{}) reported the wrong node",
            fc.len() + 1,
            seqno + 1
        );
        let found = found.unwrap();

        let itself = find(&found, seqno + 1);
        assert!(
            same(&itself, &fc.chains[i]),
            "find self reported another node"
        );

        let err = found
            .find_seqno(seqno + 2)
            .expect_err("no error for a future seqno");
        assert_eq!(err, Error::SeqnoNotInChain { seqno: seqno + 2 });
        assert_eq!(err.errno(), Errno::EINVAL);

        let previous = find(&found, seqno);
        if i > 0 {
            assert!(
                same(&previous, &fc.chains[i - 1]),
                "find_seqno({}:{}) reported the wrong node",
                seqno + 1,
                seqno
            );
        } else {
            // Seqno 0 again: a no-op.
            assert!(same(&previous, &fc.chains[0]));
        }
    }

    fc.fini();
}

// ports st-dma-fence-chain: find_signaled
#[test]
fn find_signaled() {
    let fc = FenceChains::new(2, seqno_inc);
    fc.signal(0);

    let found = find(&fc.tail, 1);
    // Point 1 has completed: either nothing is left to wait for (its node was collected) or
    // its own node — never the tail, which also waits for fence 1.
    if let Some(node) = &found {
        assert!(
            node.ptr_eq(&fc.chains[0]),
            "node at seqno {} reported for completed seqno 1",
            node.seqno()
        );
    }

    fc.fini();
}

// ports st-dma-fence-chain: find_out_of_order
#[test]
fn find_out_of_order() {
    let fc = FenceChains::new(3, seqno_inc);
    // Signal the middle point of 1-2-3: reaching point 2 still needs point 1, so the search
    // must end on node 1 (node 2 being collected on the way).
    fc.signal(1);

    let found = find(&fc.tail, 2);
    assert!(
        same(&found, &fc.chains[0]),
        "node at seqno {:?} reported for completed seqno 2",
        found.as_ref().map(Fence::seqno)
    );

    fc.fini();
}

// ports st-dma-fence-chain: find_gap
#[test]
fn find_gap() {
    let fc = FenceChains::new(64, seqno_inc2);

    for i in 0..fc.len() {
        let seqno = 2 * i as u64;
        let found = find(&fc.tail, seqno + 1);
        assert!(
            same(&found, &fc.chains[i]),
            "node at seqno {:?} reported by find_seqno({}:{})",
            found.as_ref().map(Fence::seqno),
            fc.len() + 1,
            seqno + 1
        );
        let itself = find(found.as_ref().unwrap(), seqno + 2);
        assert!(
            same(&itself, &fc.chains[i]),
            "find self reported another node"
        );
    }

    fc.fini();
}

/// One `find_race` worker: look up random points from the tail while signalling random fences
/// (never the last). Returns the iterations done, or what went wrong.
fn find_race_worker(fc: &FenceChains, stop: &AtomicBool, seed: u64) -> Result<u64, String> {
    let mut rng = XorShift::new(seed);
    let len = fc.len();
    let mut iterations = 0u64;
    // At least one round even if the deadline passed before this thread got to run.
    loop {
        let seqno = 1 + rng.below(len) as u64;
        match fc.tail.find_seqno(seqno) {
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(format!("failed to find seqno {seqno}: {e}"));
            }
            // Everything up to `seqno` signalled and was collected.
            Ok(None) => {}
            Ok(Some(node)) => {
                // A node can only find itself if it is the point looked for.
                if node.seqno() == seqno
                    && let Err(e) = node.find_seqno(seqno)
                {
                    stop.store(true, Ordering::SeqCst);
                    return Err(format!("find-self failed for seqno {seqno}: {e}"));
                }
            }
        }
        fc.signal(rng.below(len - 1));
        iterations += 1;
        if stop.load(Ordering::Relaxed) {
            return Ok(iterations);
        }
    }
}

// ports st-dma-fence-chain: find_race
// Upstream runs for 5 s; this runs for FIND_RACE_TIME (2 s) to keep the suite quick.
#[test]
fn find_race() {
    let fc = FenceChains::new(CHAIN_SZ, seqno_inc);
    let ncpus = thread::available_parallelism().map_or(1, |n| n.get());
    let stop = AtomicBool::new(false);

    let results: Vec<Result<u64, String>> = thread::scope(|s| {
        let workers: Vec<_> = (0..ncpus)
            .map(|i| {
                let (fc, stop) = (&fc, &stop);
                s.spawn(move || find_race_worker(fc, stop, 0x5EED + i as u64))
            })
            .collect();
        let start = Instant::now();
        while !stop.load(Ordering::SeqCst) && start.elapsed() < FIND_RACE_TIME {
            thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::SeqCst);
        workers
            .into_iter()
            .map(|w| w.join().expect("find_race worker panicked"))
            .collect()
    });

    let mut iterations = 0;
    for r in results {
        iterations += r.unwrap_or_else(|e| panic!("{e}"));
    }
    let count = fc.fences.iter().filter(|f| f.is_signaled()).count();
    println!(
        "find_race: {ncpus} threads, {iterations} lookups, completed {count} cycles \
         ({count} of {CHAIN_SZ} fences signalled)"
    );
    assert!(count >= 1, "every worker signals at least one fence");
    // The last fence is never signalled by the workers, so the tail must still be pending.
    assert!(!fc.fences[CHAIN_SZ - 1].is_signaled());
    assert!(!fc.tail.is_signaled());

    fc.fini();
}

// ports st-dma-fence-chain: signal_forward
#[test]
fn signal_forward() {
    let fc = FenceChains::new(64, seqno_inc);

    for i in 0..fc.len() {
        fc.signal(i);
        assert!(fc.chains[i].is_signaled(), "chain[{i}] not signalled");
        if i + 1 < fc.len() {
            assert!(
                !fc.chains[i + 1].is_signaled(),
                "chain[{}] is signalled",
                i + 1
            );
        }
    }

    fc.fini();
}

// ports st-dma-fence-chain: signal_backward
#[test]
fn signal_backward() {
    let fc = FenceChains::new(64, seqno_inc);

    for i in (0..fc.len()).rev() {
        fc.signal(i);
        if i > 0 {
            assert!(!fc.chains[i].is_signaled(), "chain[{i}] is signalled");
        }
    }
    for (i, chain) in fc.chains.iter().enumerate() {
        assert!(chain.is_signaled(), "chain[{i}] was not signalled");
    }

    fc.fini();
}

/// Upstream `__wait_fence_chains` plus the three `wait_*` drivers: a thread blocks on the
/// tail while this thread signals every fence in `order`. The waiter must return, and only
/// once the last fence has signalled.
fn wait_in_order(fc: FenceChains, order: &[usize]) {
    assert_eq!(order.len(), fc.len());
    let started = Barrier::new(2);
    // Incremented *before* each signal: a waiter woken by the last signal sees the full count,
    // one woken early sees less.
    let signalling = AtomicUsize::new(0);

    thread::scope(|s| {
        let waiter = s.spawn(|| {
            started.wait();
            fc.tail.wait_for_signal();
            (fc.tail.is_signaled(), signalling.load(Ordering::SeqCst))
        });
        // Upstream yields to the waiter so it is (likely) asleep before signalling starts.
        started.wait();
        thread::yield_now();
        for &i in order {
            signalling.fetch_add(1, Ordering::SeqCst);
            fc.signal(i);
        }
        let (signalled, seen) = waiter.join().expect("waiter panicked");
        assert!(signalled, "wait returned on a pending tail");
        assert_eq!(
            seen,
            order.len(),
            "wait returned before the last fence signalled"
        );
    });

    fc.fini();
}

// ports st-dma-fence-chain: wait_forward
#[test]
fn wait_forward() {
    let fc = FenceChains::new(CHAIN_SZ, seqno_inc);
    let order: Vec<usize> = (0..CHAIN_SZ).collect();
    wait_in_order(fc, &order);
}

// ports st-dma-fence-chain: wait_backward
#[test]
fn wait_backward() {
    let fc = FenceChains::new(CHAIN_SZ, seqno_inc);
    let order: Vec<usize> = (0..CHAIN_SZ).rev().collect();
    wait_in_order(fc, &order);
}

// ports st-dma-fence-chain: wait_random
#[test]
fn wait_random() {
    let fc = FenceChains::new(CHAIN_SZ, seqno_inc);
    // Fisher–Yates shuffle of the signalling order, as upstream `randomise_fences()`.
    let mut order: Vec<usize> = (0..CHAIN_SZ).collect();
    let mut rng = XorShift::new(0xC4A1_4D0B);
    for count in (1..order.len()).rev() {
        let swp = rng.below(count + 1);
        order.swap(count, swp);
    }
    assert_ne!(order, (0..CHAIN_SZ).collect::<Vec<_>>());
    wait_in_order(fc, &order);
}
