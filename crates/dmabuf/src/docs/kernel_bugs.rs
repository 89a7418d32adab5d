//! # Kernel bugs this crate is built to avoid
//!
//! Three hazards of the kernel's dma-buf code shaped the design here. Each entry says what
//! goes wrong in the kernel, where it was reported or fixed upstream, and what this crate does
//! instead.
//!
//! ## Lock inversion between a fence array and its members
//!
//! A `dma_fence_array` arms its members from its `enable_signaling` hook, which runs under the
//! array's fence lock, so the array's lock is taken before each member's; a member signals
//! under its own lock and runs the array's callback there, which signals the array and so
//! takes the array's lock second. Upstream fixed it by signalling the array from an irq_work
//! ("dma-buf/fence: Fix lock inversion within dma-fence-array", 2017).
//!
//! Here callbacks run after the fence lock is released and issuer hooks run without it
//! ([`fence`](crate::fence) module docs, `core.rs` and [`FenceOps`](crate::fence::FenceOps)),
//! so the last member's callback signals the array directly and no order between two fence
//! locks exists.
//!
//! ## Recursive release of long chains
//!
//! Dropping the last reference to the head of a long `dma_fence_chain` releases its
//! predecessor, which releases its own, and so on: released recursively, a chain of thousands
//! of points overflows the kernel stack (the failure Christian König describes on dri-devel in
//! the thread "RFC: dma-buf: Add an API for importing and exporting sync files", March 2020).
//! `dma_fence_chain_release()` therefore unlinks predecessors by hand, and arrays refuse
//! containers as members so nesting stays bounded.
//!
//! Here a chain node's drop unlinks the predecessors it holds the last reference to one at a
//! time ([`chain`](crate::fence::chain)), and [`Fence::new_array`](crate::Fence::new_array)
//! refuses container members ([`Error::ContainerMember`](crate::Error::ContainerMember)), so
//! dropping any fence uses constant stack; `tests/stack.rs` drops a chain of ten million points on a 2 MiB stack.
//!
//! ## sw_sync signals its points under the timeline lock
//!
//! `sw_sync` gives every point's fence the timeline's own lock and signals the points reached
//! with that lock held, so a fence callback that creates a point on the same timeline, or
//! drops the last reference to a point (whose release takes the lock to unlink it), recurses
//! onto the lock it is running under. Upstream fixed the release half ("dma-buf/sw_sync:
//! Avoid recursive lock during fence signal", 2023); creating a point or advancing the
//! timeline from a callback still deadlocks there.
//!
//! Here the [`Timeline`](crate::Timeline) takes the points reached out of its state under the
//! state lock and signals them after releasing it, so a callback may create points; an
//! advance or close asked for from inside a point's callback is done by the advancing thread
//! once the current callbacks have returned (see the module's rules).
