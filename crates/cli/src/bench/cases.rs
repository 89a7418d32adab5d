//! The cases of `dmabuf bench`, each the library's operation beside its plain baseline (the
//! same pairs as the criterion benches: `crates/dmabuf/benches/{fence,buf,resv,chain}.rs`,
//! `crates/ww/benches/transactions.rs`, `crates/lockdep/benches/lockdep.rs`).

use super::Case;
use dmabuf::buf::exporters::SystemHeap;
use dmabuf::buf::{Device, DeviceCaps, Direction, HostMemory, Memory, SgTable};
use dmabuf::fence::{Fence, FenceContext, Signaller};
use dmabuf::lockdep::{self, LockClass};
use dmabuf::resv::{Resv, Usage};
use dmabuf_ww::{AcquireCtx, WwClass, WwMutex};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Every case, in the order printed.
pub(super) fn all() -> Vec<Case> {
    vec![
        Case {
            name: "fence create + signal",
            baseline: "Arc<AtomicBool> create + store",
            ops: 200_000,
            value: fence_create_signal,
            base: flag_create_store,
        },
        Case {
            name: "fence add_callback + signal",
            baseline: "boxed closure via Mutex<Vec>",
            ops: 100_000,
            value: fence_callback_signal,
            base: queued_closure,
        },
        Case {
            name: "attach + map + unmap + detach",
            baseline: "device map + unmap",
            ops: 20_000,
            value: attach_map_cycle,
            base: raw_map_cycle,
        },
        Case {
            name: "lock_all 8 of 1024, 2 threads",
            baseline: "sorted std Mutexes, 2 threads",
            // Rounds of tens of milliseconds: a scheduler tick given to another process
            // lands on both sides of a round alike.
            ops: 300_000,
            value: ww_transactions,
            base: std_transactions,
        },
        Case {
            name: "resv get_fences(READ) of 4, no lock",
            baseline: "RwLock<Vec> read + filter + clone",
            ops: 100_000,
            value: resv_get_fences,
            base: rwlock_vec_read,
        },
        Case {
            name: "timeline point lookup, 4096 pending",
            baseline: "binary search of a Vec + clone",
            ops: 100_000,
            value: chain_find_seqno,
            base: vec_binary_search,
        },
        Case {
            name: "seen acquisition, validator on",
            baseline: "the same, validator off",
            ops: 500_000,
            value: tracked_validator_on,
            base: tracked_validator_off,
        },
    ]
}

/// Four pending fences of four contexts with the usages in turn (KERNEL, WRITE, READ,
/// BOOKKEEP: a READ query sees three), and their issuers (kept, so they stay pending).
fn four_fences() -> (Vec<Signaller>, Vec<(Fence, Usage)>) {
    (0..4)
        .map(|i| {
            let (issuer, fence) = FenceContext::new("bench", format!("resv{i}")).next_fence();
            (issuer, (fence, Usage::ALL[i]))
        })
        .unzip()
}

fn resv_get_fences(n: u64) -> Duration {
    let (_issuers, fences) = four_fences();
    let resv = Resv::new();
    {
        let mut guard = resv.lock_single();
        guard.reserve_fences(4).expect("room for 4");
        for (f, usage) in &fences {
            guard.add_fence(f, *usage);
        }
    }
    let t = Instant::now();
    for _ in 0..n {
        black_box(resv.get_fences(Usage::Read));
    }
    t.elapsed()
}

/// The same query on a read-locked list: the entries of usage READ or below that have not
/// signalled, cloned.
fn rwlock_vec_read(n: u64) -> Duration {
    let (_issuers, fences) = four_fences();
    let list = parking_lot::RwLock::new(fences);
    let t = Instant::now();
    for _ in 0..n {
        let fences: Vec<Fence> = list
            .read()
            .iter()
            .filter(|(f, u)| *u <= Usage::Read && !f.is_signaled())
            .map(|(f, _)| f.clone())
            .collect();
        black_box(fences);
    }
    t.elapsed()
}

/// Points of the lookup cases.
const POINTS: u64 = 4096;

fn chain_find_seqno(n: u64) -> Duration {
    let ctx = FenceContext::new("bench", "points");
    let mut issuers = Vec::new();
    let mut head = None;
    for p in 1..=POINTS {
        let (issuer, fence) = ctx.next_fence();
        issuers.push(issuer);
        head = Some(Fence::new_chain(head.take(), fence, p).expect("a point"));
    }
    let head = head.expect("points added");
    // The first lookup builds the chain's index, as a syncobj's first wait would.
    black_box(head.find_seqno(POINTS / 2).expect("in the chain"));
    let t = Instant::now();
    for _ in 0..n {
        black_box(
            head.find_seqno(black_box(POINTS / 2))
                .expect("in the chain"),
        );
    }
    t.elapsed()
}

fn vec_binary_search(n: u64) -> Duration {
    let ctx = FenceContext::new("bench", "points");
    let (_issuers, points): (Vec<Signaller>, Vec<(u64, Fence)>) = (1..=POINTS)
        .map(|p| {
            let (issuer, fence) = ctx.next_fence();
            (issuer, (p, fence))
        })
        .unzip();
    let t = Instant::now();
    for _ in 0..n {
        let want = black_box(POINTS / 2);
        let i = points.partition_point(|(p, _)| *p < want);
        black_box(points[i].1.clone());
    }
    t.elapsed()
}

fn fence_create_signal(n: u64) -> Duration {
    let ctx = FenceContext::new("bench", "create");
    let t = Instant::now();
    for _ in 0..n {
        let (issuer, fence) = ctx.next_fence();
        issuer.signal();
        black_box(fence.is_signaled());
    }
    t.elapsed()
}

fn flag_create_store(n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        let flag = Arc::new(AtomicBool::new(false));
        let consumer = black_box(flag.clone());
        flag.store(true, Ordering::Release);
        black_box(consumer.load(Ordering::Acquire));
    }
    t.elapsed()
}

fn fence_callback_signal(n: u64) -> Duration {
    let ctx = FenceContext::new("bench", "callback");
    let hits = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    for _ in 0..n {
        let (issuer, fence) = ctx.next_fence();
        let h = hits.clone();
        let handle = fence
            .add_callback(move |_| {
                h.fetch_add(1, Ordering::Relaxed);
            })
            .ok();
        issuer.signal();
        black_box(handle);
    }
    t.elapsed()
}

type Queue = Arc<Mutex<Vec<Box<dyn FnOnce(u64) + Send>>>>;

fn queued_closure(n: u64) -> Duration {
    let hits = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    for i in 0..n {
        let queue: Queue = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(move |_| {
                h.fetch_add(1, Ordering::Relaxed);
            }));
        let callbacks = std::mem::take(
            &mut *queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for cb in callbacks {
            cb(i);
        }
    }
    t.elapsed()
}

/// The buffer size of the mapping cases.
const SIZE: u64 = 64 * 1024;

fn attach_map_cycle(n: u64) -> Duration {
    let dev = Device::new("bench", DeviceCaps::NONE);
    let Ok(buf) = SystemHeap::new().alloc(SIZE) else {
        return Duration::ZERO;
    };
    let t = Instant::now();
    for _ in 0..n {
        let Ok(att) = buf.attach(&dev) else { break };
        let guard = buf.resv().lock_single();
        if let Ok(m) = att.map(&guard, Direction::ToDevice) {
            black_box(m.segments());
            let _ = m.unmap(&guard);
        }
        drop(guard);
        att.detach();
    }
    t.elapsed()
}

fn raw_map_cycle(n: u64) -> Duration {
    let dev = Device::new("bench", DeviceCaps::NONE);
    let Some(memory) = HostMemory::zeroed(SIZE) else {
        return Duration::ZERO;
    };
    let memory: Arc<dyn Memory> = Arc::new(memory);
    let t = Instant::now();
    for _ in 0..n {
        if let Ok(table) = SgTable::map_memory(
            &dev,
            Direction::ToDevice,
            &memory,
            SIZE as usize,
            SIZE as usize,
        ) {
            black_box(table.segments());
            table.unmap_from_device();
        }
    }
    t.elapsed()
}

/// Objects and set size of the transaction cases (light contention), and the sets each
/// thread cycles through: the criterion bench's `n8_of_m1024` shape, sets and generator.
const OBJECTS: usize = 1024;
const SET: usize = 8;
const POOL: usize = 1024;
const THREADS: u64 = 2;

static CLASS: WwClass = WwClass::wound_wait("dmabuf-bench.transactions");

/// The random sets of thread `t` (xorshift, fixed seeds; the criterion bench's, so both
/// measure the same transactions): the same for both sides.
fn sets(t: u64) -> Vec<[usize; SET]> {
    let seed = 0x5EED_0000 + (SET * 1_000_003 + OBJECTS * 7) as u64 + t;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..POOL)
        .map(|_| {
            std::array::from_fn(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (((x >> 32) * OBJECTS as u64) >> 32) as usize
            })
        })
        .collect()
}

/// Each thread's sets as references into `objects`, made before the clock starts (as the
/// criterion bench does: how the sets are laid out is part of what both sides pay).
fn refs<T>(objects: &[T]) -> Vec<Vec<Vec<&T>>> {
    (0..THREADS)
        .map(|t| {
            sets(t)
                .iter()
                .map(|set| set.iter().map(|&i| &objects[i]).collect())
                .collect()
        })
        .collect()
}

/// Runs `work(thread, transactions)` on [`THREADS`] threads, `n` transactions in all,
/// timed from when all are ready until all are done.
fn threads(n: u64, work: impl Fn(u64, u64) + Sync) -> Duration {
    let start = Barrier::new(THREADS as usize + 1);
    let end = Barrier::new(THREADS as usize + 1);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (start, end, work) = (&start, &end, &work);
            s.spawn(move || {
                start.wait();
                work(t, n / THREADS);
                end.wait();
            });
        }
        start.wait();
        let t0 = Instant::now();
        end.wait();
        t0.elapsed()
    })
}

fn ww_transactions(n: u64) -> Duration {
    let objects: Vec<WwMutex<u64>> = (0..OBJECTS).map(|_| WwMutex::new(&CLASS, 0)).collect();
    let per_thread = refs(&objects);
    threads(n, |t, count| {
        let sets = &per_thread[t as usize];
        for k in 0..count as usize {
            let ctx = AcquireCtx::new(&CLASS);
            if let Ok(mut guards) = ctx.lock_all(&sets[k % sets.len()]) {
                ctx.done();
                for g in &mut guards {
                    *g += 1;
                }
            }
        }
    })
}

fn std_transactions(n: u64) -> Duration {
    let objects: Vec<Mutex<u64>> = (0..OBJECTS).map(|_| Mutex::new(0)).collect();
    let per_thread = refs(&objects);
    threads(n, |t, count| {
        let sets = &per_thread[t as usize];
        let mut order: Vec<&Mutex<u64>> = Vec::with_capacity(SET);
        let mut guards = Vec::with_capacity(SET);
        for k in 0..count as usize {
            order.clear();
            order.extend_from_slice(&sets[k % sets.len()]);
            order.sort_unstable_by_key(|m| std::ptr::from_ref::<Mutex<u64>>(m) as usize);
            order.dedup_by_key(|m| std::ptr::from_ref::<Mutex<u64>>(m) as usize);
            for m in &order {
                guards.push(m.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            }
            for g in &mut guards {
                **g += 1;
            }
            guards.clear();
        }
    })
}

static TRACKED: LockClass = LockClass::new("dmabuf-bench.tracked");

fn tracked_validator_on(n: u64) -> Duration {
    tracked(n, true)
}

fn tracked_validator_off(n: u64) -> Duration {
    tracked(n, false)
}

/// `n` lock+unlock of a tracked mutex with the validator on or off (it is off again after),
/// taken once before the clock starts so that its chain is one the validator has seen.
fn tracked(n: u64, on: bool) -> Duration {
    let m = lockdep::Mutex::new(&TRACKED, 0u64);
    lockdep::set_enabled(on);
    *m.lock() += 1;
    let t = Instant::now();
    for _ in 0..n {
        *black_box(&m).lock() += 1;
    }
    let took = t.elapsed();
    lockdep::set_enabled(false);
    took
}
