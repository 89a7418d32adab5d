//! Loom models of the fence core: signal vs add_callback vs remove vs wait vs drop, the
//! array's member counting, and the chain's lookup index handed from node to node.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p dmabuf --lib --release -- tests::loom`.

use crate::error::{Errno, FenceFailed};
use crate::fence::{Fence, FenceContext, FenceStatus, chain};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

fn ctx() -> FenceContext {
    FenceContext::new("loom", "model")
}

/// A callback added concurrently with the signal runs exactly once, or is handed back unrun.
#[test]
fn signal_vs_add_callback() {
    loom::model(|| {
        let (issuer, fence) = ctx().next_fence();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let f = fence.clone();
        let adder = thread::spawn(move || {
            f.add_callback(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .is_ok()
        });
        issuer.signal();
        let queued = adder.join().unwrap();
        assert!(fence.is_signaled());
        assert_eq!(ran.load(Ordering::SeqCst), usize::from(queued));
    });
}

/// `remove` returning true means the callback never runs; false means it has finished.
#[test]
fn signal_vs_remove_callback() {
    loom::model(|| {
        let (issuer, fence) = ctx().next_fence();
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let handle = fence
            .add_callback(move |_| {
                d.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let signaller = thread::spawn(move || {
            issuer.signal();
        });
        let removed = handle.remove();
        // Whatever the interleaving, by now the callback is either gone or finished.
        let seen = done.load(Ordering::SeqCst);
        signaller.join().unwrap();
        if removed {
            assert_eq!(seen, 0);
            assert_eq!(done.load(Ordering::SeqCst), 0);
        } else {
            assert_eq!(seen, 1);
        }
    });
}

/// Removing the second of two callbacks while the signaller runs them: `true` means it never
/// runs, `false` that it had returned; either way `remove` never waits for the first one.
#[test]
fn signal_vs_remove_of_a_later_callback() {
    loom::model(|| {
        let (issuer, fence) = ctx().next_fence();
        let first = Arc::new(AtomicUsize::new(0));
        let second = Arc::new(AtomicUsize::new(0));
        let f1 = first.clone();
        fence
            .add_callback(move |_| {
                f1.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let s2 = second.clone();
        let handle = fence
            .add_callback(move |_| {
                s2.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let signaller = thread::spawn(move || {
            issuer.signal();
        });
        let removed = handle.remove();
        let seen = second.load(Ordering::SeqCst);
        signaller.join().unwrap();
        assert_eq!(first.load(Ordering::SeqCst), 1);
        if removed {
            assert_eq!(
                second.load(Ordering::SeqCst),
                0,
                "a removed callback never runs"
            );
        } else {
            assert_eq!(seen, 1, "false: it had run when remove returned");
        }
    });
}

/// A waiter always wakes, whether the signal comes before, during or after it parks.
#[test]
fn signal_vs_wait() {
    loom::model(|| {
        let (issuer, fence) = ctx().next_fence();
        let f = fence.clone();
        let waiter = thread::spawn(move || {
            f.wait().unwrap();
            f.status()
        });
        issuer.signal();
        assert_eq!(waiter.join().unwrap(), FenceStatus::Signaled);
    });
}

/// An issuer dropped on another thread cancels the fence; waiters see ECANCELED, and every
/// handle dropped in any order frees the fence (loom checks for leaks).
#[test]
fn issuer_drop_vs_wait_and_consumer_drop() {
    loom::model(|| {
        let (issuer, fence) = ctx().next_fence();
        let f2 = fence.clone();
        let dropper = thread::spawn(move || drop(issuer));
        let consumer = thread::spawn(move || drop(f2));
        assert_eq!(fence.wait(), Err(FenceFailed(Errno::ECANCELED)));
        assert_eq!(fence.status(), FenceStatus::Failed(Errno::ECANCELED));
        dropper.join().unwrap();
        consumer.join().unwrap();
    });
}

/// An array enabled while its members signal on two threads signals exactly once, after both.
#[test]
fn array_members_signal_concurrently() {
    loom::model(|| {
        let c = ctx();
        let (a, fa) = c.next_fence();
        let (b, fb) = c.next_fence();
        let array = Fence::new_array(vec![fa, fb], c.id(), 100).unwrap();
        let fired = Arc::new(AtomicUsize::new(0));
        let fi = fired.clone();
        let queued = array
            .add_callback(move |_| {
                fi.fetch_add(1, Ordering::SeqCst);
            })
            .is_ok();
        let ta = thread::spawn(move || a.signal_with_error(Errno::EIO));
        let tb = thread::spawn(move || b.signal());
        ta.join().unwrap();
        tb.join().unwrap();
        assert!(array.is_signaled());
        assert_eq!(array.status(), FenceStatus::Failed(Errno::EIO));
        assert_eq!(fired.load(Ordering::SeqCst), usize::from(queued));
    });
}

/// A chain head waited on while its two points signal on two threads always completes.
#[test]
fn chain_points_signal_concurrently() {
    loom::model(|| {
        let c = ctx();
        let (a, fa) = c.next_fence();
        let (b, fb) = c.next_fence();
        let p1 = Fence::new_chain(None, fa, 1).unwrap();
        let p2 = Fence::new_chain(Some(p1), fb, 2).unwrap();
        let head = p2.clone();
        let waiter = thread::spawn(move || head.wait());
        let tb = thread::spawn(move || b.signal());
        a.signal();
        tb.join().unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert!(p2.is_signaled());
    });
}

/// Three pending points: issuers and nodes, oldest first.
fn chain_of_three(c: &FenceContext) -> (Vec<crate::fence::Signaller>, Vec<Fence>) {
    let mut issuers = Vec::new();
    let mut nodes: Vec<Fence> = Vec::new();
    for seqno in 1..=3 {
        let (issuer, fence) = c.next_fence();
        issuers.push(issuer);
        nodes.push(Fence::new_chain(nodes.last().cloned(), fence, seqno).unwrap());
    }
    (issuers, nodes)
}

/// Three pending points, the newest indexed: issuers and nodes, oldest first.
fn indexed_chain(c: &FenceContext) -> (Vec<crate::fence::Signaller>, Vec<Fence>) {
    let (issuers, nodes) = chain_of_three(c);
    chain::index_now(&nodes[2]);
    (issuers, nodes)
}

/// A lookup through the newest node's index while another thread makes a node on it finds
/// the point's node; afterwards only the new node holds the index, with the old one added.
#[test]
fn chain_lookup_vs_new_node() {
    loom::model(|| {
        let c = ctx();
        let (_issuers, nodes) = indexed_chain(&c);
        let (_d, fd) = c.next_fence();
        let head = nodes[2].clone();
        let maker = thread::spawn(move || Fence::new_chain(Some(head), fd, 4).unwrap());
        let found = nodes[2].find_seqno(1).unwrap().unwrap();
        let p4 = maker.join().unwrap();
        assert!(found.ptr_eq(&nodes[0]));
        assert!(!chain::holds_index(&nodes[2]));
        assert_eq!(chain::indexed(&p4).map(|ix| ix.len()), Some(3));
        assert!(p4.find_seqno(2).unwrap().unwrap().ptr_eq(&nodes[1]));
    });
}

/// An index built for the newest node while another thread makes a node on it ends up with
/// the new node or nowhere, never on the node that has a successor; lookups on the new node
/// answer the same either way.
#[test]
fn chain_index_built_vs_new_node() {
    loom::model(|| {
        let c = ctx();
        let (_issuers, nodes) = chain_of_three(&c);
        let (_d, fd) = c.next_fence();
        let head = nodes[2].clone();
        let maker = thread::spawn(move || Fence::new_chain(Some(head), fd, 4).unwrap());
        chain::index_now(&nodes[2]);
        let p4 = maker.join().unwrap();
        assert!(
            !chain::holds_index(&nodes[2]),
            "a node with a successor keeps no index"
        );
        if let Some(ix) = chain::indexed(&p4) {
            assert_eq!(ix.len(), 3);
        }
        for (seqno, node) in nodes.iter().chain([&p4]).enumerate() {
            assert!(
                p4.find_seqno(seqno as u64 + 1)
                    .unwrap()
                    .unwrap()
                    .ptr_eq(node)
            );
        }
    });
}

/// A lookup through the index while the point signals and a walk collects it answers the
/// point's node or the one before, as the kernel's walk would at one moment or the other.
#[test]
fn chain_lookup_vs_signal_and_walk() {
    loom::model(|| {
        let c = ctx();
        let (mut issuers, nodes) = indexed_chain(&c);
        let two = issuers.remove(1);
        let head = nodes[2].clone();
        let signaller = thread::spawn(move || {
            two.signal();
            chain::iter(&head).for_each(drop);
        });
        let found = nodes[2].find_seqno(2).unwrap().unwrap();
        signaller.join().unwrap();
        assert!(found.ptr_eq(&nodes[1]) || found.ptr_eq(&nodes[0]));
        assert!(nodes[2].find_seqno(2).unwrap().unwrap().ptr_eq(&nodes[0]));
    });
}

/// `wait_any` wakes for whichever fence signals, and removes its callbacks from the others.
#[test]
fn wait_any_vs_signal() {
    loom::model(|| {
        let c = ctx();
        let (_a, fa) = c.next_fence();
        let (b, fb) = c.next_fence();
        let tb = thread::spawn(move || b.signal());
        let idx = crate::fence::wait_any(&[fa.clone(), fb], None).unwrap();
        assert_eq!(idx, 1);
        tb.join().unwrap();
        assert!(!fa.is_signaled());
    });
}

/// An async waiter's waker fires when the fence signals on another thread, whichever of poll
/// and signal comes first.
#[test]
fn future_vs_signal() {
    use std::future::Future;
    use std::task::{Context, Poll, Wake, Waker};

    struct Flag(AtomicUsize);
    impl Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    loom::model(|| {
        let (issuer, fence) = ctx().next_fence();
        let flag = std::sync::Arc::new(Flag(AtomicUsize::new(0)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = Box::pin(fence.wait_async());
        let t = thread::spawn(move || issuer.signal());
        let first = fut.as_mut().poll(&mut cx);
        t.join().unwrap();
        if first.is_pending() {
            // Pending was returned, so the signal must have woken us.
            assert_eq!(flag.0.load(Ordering::SeqCst), 1);
        }
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    });
}
