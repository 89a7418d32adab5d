//! Eviction under load: many device-memory buffers in a pool that holds a third of them,
//! importer threads on three devices mapping and writing through dynamic attachments, while an
//! evictor allocates to force buffers out (and mapping brings them back). Each write job
//! publishes a write fence under the lock, waits for the jobs before it, writes the whole
//! buffer through its mapping and signals. At the end every buffer must hold exactly its last
//! job's pattern: a write lost in memory the buffer left, or two jobs interleaved, shows.
//!
//! Then the pool's books under evictions racing restores: rounds of an evictor against a
//! mapper that brings buffers back, each round checked against where the buffers really are.

use dmabuf::buf::exporters::{DeviceMemory, Placement};
use dmabuf::buf::{
    Attachment, Device, DeviceCaps, Direction, DmaBuf, Dynamic, Importer, Locked, Mapping,
};
use dmabuf::fence::FenceContext;
use dmabuf::resv::Usage;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BUFFERS: usize = 12;
const SIZE: usize = 16 * 1024;
const RESIDENT: u64 = 4;
const RUN: Duration = Duration::from_millis(1500);

/// A dynamic importer that marks its mapping stale on move_notify.
#[derive(Default)]
struct Client {
    stale: AtomicBool,
    notified: Arc<AtomicU64>,
}

impl Importer for Client {
    fn move_notify(&self, locked: &Locked<'_>) {
        assert!(locked.buf().resv().is_locked());
        self.stale.store(true, Ordering::SeqCst);
        self.notified.fetch_add(1, Ordering::Relaxed);
    }
}

/// Job `seq` on buffer `k`: every 8-byte word is `k << 48 | seq`; before job 1, zeroes.
fn pattern(k: usize, seq: u64) -> Vec<u8> {
    if seq == 0 {
        return vec![0; SIZE];
    }
    let word = ((k as u64) << 48 | seq).to_le_bytes();
    word.iter().copied().cycle().take(SIZE).collect()
}

/// The distinct words of `bytes`, for a failure message.
fn words(bytes: &[u8]) -> std::collections::BTreeSet<u64> {
    bytes
        .chunks(8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
        .collect()
}

struct Importing {
    att: Attachment<Dynamic>,
    client: Arc<Client>,
    mapping: Option<Mapping>,
}

fn importer_thread(
    device: &Device,
    bufs: &[DmaBuf],
    seqs: &[Mutex<u64>],
    notified: &Arc<AtomicU64>,
    seed: u64,
) -> Result<u64, String> {
    let mut mine: Vec<Importing> = bufs
        .iter()
        .map(|b| {
            let client = Arc::new(Client {
                stale: AtomicBool::new(false),
                notified: notified.clone(),
            });
            Importing {
                att: b.dynamic_attach(device, client.clone()).expect("attach"),
                client,
                mapping: None,
            }
        })
        .collect();
    let ctx = FenceContext::new("stress", device.name().to_owned());
    let mut x = seed | 1;
    let mut jobs = 0;
    let end = Instant::now() + RUN;
    while Instant::now() < end {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x % BUFFERS as u64) as usize;
        let imp = &mut mine[k];
        let buf = &bufs[k];
        let (signaller, deps, seq) = {
            let mut g = buf.resv().lock_single();
            if imp.client.stale.swap(false, Ordering::SeqCst) || imp.mapping.is_none() {
                if let Some(old) = imp.mapping.take() {
                    old.unmap(&g).expect("unmap");
                }
                imp.mapping = Some(imp.att.map(&g, Direction::Bidirectional).expect("map"));
            }
            // Implicit sync: this job writes after every earlier reader and writer.
            let deps = buf.resv().get_fences(Usage::Read);
            let (signaller, fence) = ctx.next_fence();
            g.reserve_fences(1).expect("reserve");
            g.add_fence(&fence, Usage::Write);
            let seq = {
                let mut s = seqs[k].lock();
                *s += 1;
                *s
            };
            (signaller, deps, seq)
        };
        for d in &deps {
            d.wait_for_signal();
        }
        // The job reads and writes through the mapping it has now, even if the buffer moves
        // meanwhile: eviction waits for this job's fence before it copies. It first checks
        // that the job before it left its whole pattern (a write lost to memory the buffer
        // left, or torn by a concurrent job, shows here).
        let m = imp.mapping.as_ref().expect("mapped above");
        let mut before = vec![0u8; SIZE];
        m.dma_read(0, &mut before).expect("device read");
        if before != pattern(k, seq - 1) {
            signaller.signal();
            return Err(format!(
                "{}: buffer {k} job {seq} found {:x?}, not job {}'s pattern",
                device.name(),
                words(&before),
                seq - 1
            ));
        }
        let data = pattern(k, seq);
        for (i, chunk) in data.chunks(4096).enumerate() {
            m.dma_write((i * 4096) as u64, chunk).expect("device write");
        }
        signaller.signal();
        jobs += 1;
    }
    // Unmap and detach under the rules: unmap with the lock, detach without.
    for imp in mine {
        if let Some(m) = imp.mapping {
            let g = imp.att.buf().resv().lock_single();
            m.unmap(&g).expect("unmap");
        }
        imp.att.detach();
    }
    Ok(jobs)
}

#[test]
fn eviction_under_concurrent_device_writes_loses_no_byte() {
    let gpu = Device::new("gpu", DeviceCaps::NONE);
    let copy = Device::new("copy-engine", DeviceCaps::PEER_TO_PEER);
    let video = Device::new("video-decoder", DeviceCaps::PEER_TO_PEER);
    let vram = DeviceMemory::new(&gpu, RESIDENT * SIZE as u64);
    let bufs: Vec<DmaBuf> = (0..BUFFERS)
        .map(|_| vram.alloc(SIZE as u64).expect("alloc"))
        .collect();
    let seqs: Vec<Mutex<u64>> = (0..BUFFERS).map(|_| Mutex::new(0)).collect();
    let notified = Arc::new(AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    let (jobs, forced) = std::thread::scope(|s| {
        let a = s.spawn(|| importer_thread(&gpu, &bufs, &seqs, &notified, 0x1234));
        let b = s.spawn(|| importer_thread(&copy, &bufs, &seqs, &notified, 0x9876));
        let c = s.spawn(|| importer_thread(&video, &bufs, &seqs, &notified, 0x5555));
        let evictor = s.spawn(|| {
            let mut forced = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // A big allocation pushes two buffers out; dropping it makes room again.
                if let Ok(tmp) = vram.alloc(2 * SIZE as u64) {
                    forced += 1;
                    drop(tmp);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            forced
        });
        let results = [
            a.join().expect("gpu"),
            b.join().expect("copy"),
            c.join().expect("video"),
        ];
        stop.store(true, Ordering::Relaxed);
        let jobs: Result<u64, String> = results.into_iter().sum();
        (jobs, evictor.join().expect("evictor"))
    });
    let jobs = jobs.unwrap_or_else(|e| panic!("{e}"));
    assert!(jobs > 100, "the importers ran ({jobs} jobs)");
    assert!(forced > 0 && vram.evictions() > 0, "buffers were evicted");
    assert!(vram.restores() > 0, "and brought back by the gpu's maps");
    assert!(
        notified.load(Ordering::Relaxed) > 0,
        "importers heard of moves"
    );
    assert!(vram.used() <= vram.capacity());
    for (k, buf) in bufs.iter().enumerate() {
        buf.resv().wait_for_signal(Usage::Bookkeep);
        let g = buf.resv().lock_single();
        let v = buf.vmap(&g).expect("vmap");
        let mut bytes = vec![0u8; SIZE];
        v.memory().read_at(0, &mut bytes).expect("read");
        v.vunmap(&g).expect("vunmap");
        let last = *seqs[k].lock();
        assert!(last > 0, "buffer {k} was written");
        assert!(
            bytes == pattern(k, last),
            "buffer {k} ({:?}): expected job {last}'s pattern, found words {:x?}",
            DeviceMemory::placement(buf),
            words(&bytes)
        );
    }
    let placed: Vec<Placement> = bufs.iter().filter_map(DeviceMemory::placement).collect();
    assert_eq!(placed.len(), BUFFERS);
}

/// A dynamic importer that only needs to be told.
struct Follow;

impl Importer for Follow {
    fn move_notify(&self, _locked: &Locked<'_>) {}
}

/// The pool's books against the buffers' placements, between rounds: the bytes in use are the
/// resident buffers' bytes, and eviction reaches every one of them (an unpinned buffer in
/// device memory that eviction cannot find holds its bytes for good).
fn check_books(vram: &Arc<DeviceMemory>, bufs: &[DmaBuf], round: usize) {
    let resident: u64 = bufs
        .iter()
        .filter(|b| DeviceMemory::placement(b) == Some(Placement::Device))
        .map(|b| b.size())
        .sum();
    assert_eq!(vram.used(), resident, "round {round}: bytes in use");
    let before = vram.evictions();
    let moved = vram.evict_all().expect("evict");
    assert_eq!(vram.evictions() - before, moved as u64);
    for (k, b) in bufs.iter().enumerate() {
        assert_eq!(
            DeviceMemory::placement(b),
            Some(Placement::Host),
            "round {round}: buffer {k} is in device memory but eviction cannot reach it \
             (evict_all moved {moved}, {} bytes in use)",
            vram.used()
        );
    }
    assert_eq!(
        vram.used(),
        0,
        "round {round}: bytes in use after evicting all"
    );
    // The whole capacity can be allocated again.
    drop(vram.alloc(vram.capacity()).expect("the whole pool"));
}

#[test]
fn evictions_racing_restores_keep_the_pools_books() {
    const PAGE: u64 = 4096;
    const ROUNDS: usize = 40;
    const ROUND: Duration = Duration::from_millis(40);
    let gpu = Device::new("gpu", DeviceCaps::NONE);
    let vram = DeviceMemory::new(&gpu, 2 * PAGE);
    let bufs: Vec<DmaBuf> = (0..3).map(|_| vram.alloc(PAGE).expect("alloc")).collect();
    let atts: Vec<Attachment<Dynamic>> = bufs
        .iter()
        .map(|b| b.dynamic_attach(&gpu, Arc::new(Follow)).expect("attach"))
        .collect();
    let (mut maps, mut evictions) = (0u64, 0u64);
    for round in 0..ROUNDS {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let evictor = s.spawn(|| {
                let mut moved = 0;
                while !stop.load(Ordering::Relaxed) {
                    moved += vram.evict_all().expect("evict") as u64;
                }
                moved
            });
            // The mapper takes each lock the moment it is free, so that its restore lands
            // right after an eviction lets go of the buffer.
            let end = Instant::now() + ROUND;
            let mut k = 0;
            while Instant::now() < end {
                let buf = &bufs[k % bufs.len()];
                let g = loop {
                    if let Some(g) = buf.resv().try_lock_single() {
                        break g;
                    }
                    std::hint::spin_loop();
                };
                let m = atts[k % bufs.len()]
                    .map(&g, Direction::Bidirectional)
                    .expect("map");
                m.unmap(&g).expect("unmap");
                drop(g);
                maps += 1;
                k += 1;
            }
            stop.store(true, Ordering::Relaxed);
            evictions += evictor.join().expect("evictor");
        });
        check_books(&vram, &bufs, round);
    }
    assert!(
        maps > 1000 && evictions > 100,
        "{maps} maps, {evictions} evictions"
    );
    assert!(vram.restores() > 100, "{} restores", vram.restores());
    drop(atts);
}
