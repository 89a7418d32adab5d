//! Ports drivers/dma-buf/st-dma-resv.c: every case runs once per usage (KERNEL, WRITE, READ,
//! BOOKKEEP), as the kernel's `dma_resv` selftests do.

use dmabuf::fence::{Fence, FenceContext};
use dmabuf::resv::{Resv, Usage};

fn fence() -> (dmabuf::Signaller, Fence) {
    FenceContext::new("selftest", "resv").next_fence()
}

// ports st-dma-resv: sanitycheck
#[test]
fn sanitycheck() {
    let resv = Resv::new();
    let g = resv.lock_single();
    assert!(resv.is_locked());
    drop(g);
    assert!(!resv.is_locked());
    drop(resv); // fini
}

// ports st-dma-resv: test_signaling
#[test]
fn test_signaling() {
    for usage in Usage::ALL {
        let resv = Resv::new();
        let (issuer, f) = fence();
        let mut g = resv.lock_single();
        g.reserve_fences(1).unwrap();
        g.add_fence(&f, usage);
        assert!(
            !resv.test_signaled(usage),
            "{usage}: resv unexpectedly signaled"
        );
        issuer.signal();
        assert!(
            resv.test_signaled(usage),
            "{usage}: resv not reporting signaled"
        );
        drop(g);
    }
}

// ports st-dma-resv: test_for_each
#[test]
fn test_for_each() {
    for usage in Usage::ALL {
        let resv = Resv::new();
        let (issuer, f) = fence();
        let mut g = resv.lock_single();
        g.reserve_fences(1).unwrap();
        g.add_fence(&f, usage);
        let mut count = 0;
        for (found, u) in g.iter(usage) {
            assert!(found.ptr_eq(&f), "{usage}: unexpected fence");
            assert_eq!(u, usage, "{usage}: unexpected usage");
            count += 1;
        }
        assert_eq!(count, 1, "{usage}: exactly one fence expected");
        issuer.signal();
        drop(g);
    }
}

// ports st-dma-resv: test_for_each_unlocked
#[test]
fn test_for_each_unlocked() {
    for usage in Usage::ALL {
        let resv = Resv::new();
        let (issuer, f) = fence();
        {
            let mut g = resv.lock_single();
            g.reserve_fences(1).unwrap();
            g.add_fence(&f, usage);
        }
        let mut count = 0;
        let mut it = resv.iter_unlocked(usage);
        while let Some(found) = it.next() {
            // The first fence of a walk comes with the restart flag set.
            assert!(it.is_restarted(), "{usage}: no restart flag");
            assert!(found.ptr_eq(&f), "{usage}: unexpected fence");
            assert_eq!(it.usage(), usage, "{usage}: unexpected usage");
            count += 1;
            if count == 1 {
                // The kernel test corrupts the cursor to force a restart: the walk must
                // yield the fence again, flagged as restarted.
                it.force_restart();
            } else {
                break;
            }
        }
        assert_eq!(count, 2, "{usage}: the restart must yield the fence again");
        issuer.signal();
    }
}

// ports st-dma-resv: test_get_fences
#[test]
fn test_get_fences() {
    for usage in Usage::ALL {
        let resv = Resv::new();
        let (issuer, f) = fence();
        {
            let mut g = resv.lock_single();
            g.reserve_fences(1).unwrap();
            g.add_fence(&f, usage);
        }
        let fences = resv.get_fences(usage);
        assert_eq!(fences.len(), 1, "{usage}: one fence expected");
        assert!(fences[0].ptr_eq(&f), "{usage}: unexpected fence");
        issuer.signal();
    }
}
