//! # Differences from the kernel
//!
//! The model follows the kernel's dma-buf subsystem as of 2026 where the kernel changed over
//! time, and Linux 6.12 (the kernel the real-kernel tests run) wherever the two give user
//! space different answers; each row names the generation it describes where that matters.
//! Where this crate differs, it is on purpose:
//!
//! | Kernel | Here | Why |
//! |---|---|---|
//! | Any holder of a fence pointer can call `dma_fence_signal()`; double signal is ignored (old: `-EINVAL`). | Only the [`Signaller`](crate::Signaller) can signal, and `signal` consumes it. | A second signal cannot be written. |
//! | A fence never signalled is a bug found by review. | A dropped [`Signaller`](crate::Signaller) signals `ECANCELED` and reports the leak. | Every fence signals eventually. |
//! | `dma_fence_set_error()` WARNs on a bad errno. | [`Errno`](crate::Errno) cannot hold a bad value. | Typed. |
//! | `dma_fence_is_later()` on two contexts WARNs and says `false`. | [`Error::ContextMismatch`](crate::Error). | A silent `false` hides bugs. |
//! | `dma_fence_context_alloc()` adds to a 64-bit counter without a check. | The counter never wraps: [`try_alloc_contexts`](crate::fence::try_alloc_contexts) answers [`Error::ContextsExhausted`](crate::Error) (`ENOSPC`) when fewer ids are left than asked for; [`alloc_contexts`](crate::fence::alloc_contexts) and [`FenceContext::new`](crate::fence::FenceContext::new) panic (only after reservations of about 2^64 ids). | A wrapped counter hands out ids in use: two timelines would compare and merge as one. |
//! | Callbacks run under the fence spinlock with interrupts off; `dma_fence_remove_callback()` waits for that lock, so for every callback of the fence, and answers `false` once the fence has signalled. | Callbacks run in the signalling thread after the lock is released. [`remove`](crate::fence::CallbackHandle::remove) waits only for its own callback while it runs on another thread (a fence wait for the validator), and takes back one the signaller has not reached yet (`true`, even though the fence has signalled). | Containers need no irq_work; a callback may use its own fence; two callbacks that remove each other's later callbacks cannot deadlock. |
//! | Callbacks cannot fail. | A panicking callback does not stop the others: every callback runs, then the first panic continues in the signaller (logged instead when the thread is already unwinding). | Callbacks run other people's code. |
//! | `enable_signaling` runs under the fence lock. | Ops hooks run without the fence lock. | König's proposal; hooks may call fence methods. |
//! | Mainline (2026): ops are detached on signal; names then read "detached-driver" / "signaled-timeline". Linux 6.12: the driver's names stay. | Ops are dropped on signal, as in mainline; names live in the context and survive, as in 6.12. | Names stay useful in listings, and sync-file info reads as on 6.12. |
//! | `dma_fence_array` `signal_on_any` (removed 2026). | Not offered; use [`wait_any`](crate::fence::wait_any). | Follows mainline. |
//! | Merge of no fences at all allocates a private stub stamped 0. | Returns the shared stub. | No allocation; no sync file merge has zero inputs. |
//! | `dma_resv` readers walk the RCU-protected fence list; the writer replaces an entry in place and frees the old fence after a grace period, and an unlocked walk restarts when the list is replaced. | Every change publishes a new immutable snapshot; readers announce the one they walk in a per-thread reader slot, and a removed fence is dropped once no slot names a snapshot that shows it ([`Resv::get_fences`](crate::resv::Resv::get_fences), [`Resv::iter_unlocked`](crate::resv::Resv::iter_unlocked)). A writer that finds every spare buffer read waits for one of those walks to end, and gets another buffer (up to eight) at its next reservation. | User space has no grace periods; a reader sees one state the object held and never waits, and appends and replacements after a reservation allocate nothing. |
//! | `dma_resv_get_singleton()` over an entry that is a container (put there by `dma_resv_replace_fences()`) builds an array holding it, with a WARN. | [`Resv::get_singleton`](crate::resv::Resv::get_singleton) builds the array from the entries' unsignalled leaves. | Arrays hold leaves only; the result still waits for everything. |
//! | Every `dma_fence_wait_timeout()` is a wait for lockdep (`__dma_fence_might_wait()`), timeout 0 included. | A zero-timeout wait enables signalling and looks, as the kernel's, but is not a wait for the validator. | It cannot block, so a callback may poll. |
//! | Merge dedups one context by sorting with `dma_fence_is_later()` and keeps the first fence, whichever that is when a 32-bit timeline's fences span half the circle or more (no fence is later than all). | [`merge`](crate::fence::unwrap::merge) sorts by a total order, then keeps per context the fences that between them are the same point as or later than every input: one within half the circle, two or three beyond. | Never panics; never drops a point nothing else waits for. |
//! | Waits may be interruptible (`-ERESTARTSYS`). | No interruptible fence waits. | User space has no signals. |
//! | `dma_fence_wait()`, `dma_resv_wait_timeout()` and a sync file's `poll()` report a fence that signalled with an error as done. | [`Fence::wait`](crate::Fence::wait), [`Resv::wait`](crate::resv::Resv::wait), [`SyncFile::wait`](crate::SyncFile::wait) and their timed forms answer the error ([`FenceFailed`](crate::FenceFailed), [`WaitError::Failed`](crate::WaitError::Failed)); the kernel's answer is `wait_for_signal` and its timed forms, and [`Resv::wait_ready`](crate::resv::Resv::wait_ready) (poll). | A consumer that waits before using a buffer learns that its producer failed. |
//! | sw_sync unlinks a pending point when its last reference goes. | A pending point lives until its timeline passes it or closes. | Simpler; bounded by the timeline. |
//! | sw_sync signals points with its timeline lock held, so `SW_SYNC_IOC_INC` from a point's callback would deadlock. | [`Timeline::inc`](crate::Timeline::inc) or [`close`](crate::Timeline::close) from a point's callback is done by the advancing thread once the callbacks of the current step have returned. | A callback may drive its own timeline. |
//! | Mismatched importer and exporter: since 2025 the kernel pins on map instead of caching at attach. | Maps at attach, bidirectionally, pinning a dynamic exporter, and caches the mapping ([`buf::Attachment`](crate::buf::Attachment)). | The seeds' (001) generation, chosen by the project. |
//! | A mapping is an `sg_table` of physical pages mapped through the DMA API. | A list of [`Segment`](crate::buf::Segment)s in a per-device address space whose accesses fault once unmapped. | Stale mappings show up in tests. |
//! | `dma_resv_reserve_fences()` and `dma_resv_copy_fences()` allocate with `GFP_KERNEL`: lockdep sees reclaim (`fs_reclaim`) where the table is allocated, for a reservation only when the table grows. | [`ResvGuard::reserve_fences`](crate::resv::ResvGuard::reserve_fences) and [`ResvGuard::copy_fences`](crate::resv::ResvGuard::copy_fences) are reclaim points for the validator on every call, room or not. | Whether a reservation grows depends on the table's history; one inside a fence signalling section is reported the first time it runs. |
//! | Locked callbacks trust `dma_resv_assert_held()`. | They take a guard ([`Locked`](crate::buf::Locked)); a guard of another buffer is [`Error::WrongLock`](crate::Error). | The proof is in the type. |
//! | A mapping not unmapped before detach leaks (WARN at best); one still in use after detach is a use after free. | Detach unmaps every mapping left, live ones too, and drops leftover pins, with a warning; a [`Mapping`](crate::buf::Mapping) used after its detach faults ([`Error::Fault`](crate::Error)) and its `unmap` is a no-op. | Nothing leaks, and no device window outlives the pin that kept the storage under it. |
//! | debugfs `bufinfo` locks each buffer's reservation object. | [`bufinfo`](crate::buf::bufinfo) reads fences lock-free. | Callable while holding a reservation lock. |
//! | `DMA_BUF_SET_NAME` on an attached buffer answered `-EBUSY` (before 2022). | Renaming is always allowed, as in mainline. | Follows mainline. |
//! | A sync file is an fd; a dma-buf's `poll()` arms one callback per direction. | [`SyncFile`](crate::SyncFile) is a value (`dmabuf-linux`'s `SyncFileFd` is the fd); every [`Resv::ready`](crate::resv::Resv::ready) future arms its own callback. | In-process first; no shared wait queue to contend on. |
//! | A syncobj is a handle in a DRM file (or an fd); arrays of handles are looked up, and a bad handle, flag or padding field is `-ENOENT`/`-EINVAL`. | [`Syncobj`](crate::syncobj::Syncobj) is a value shared by cloning; calls take one object; [`WaitFlags`](crate::syncobj::WaitFlags) and [`NotifyWhen`](crate::syncobj::NotifyWhen) cannot hold an unknown flag ([`WaitFlags::from_bits`](crate::syncobj::WaitFlags::from_bits) answers `EINVAL`). | Handles, fds and the ioctls' checks are `dmabuf-linux`'s. |
//! | The syncobj's spinlock is held while `dma_fence_chain_find_seqno()` walks the chain and while waiters are woken. | The lock guards the fence slot and the waiter list only; points are looked up and waiters told outside it, looked up again if the fence changed meanwhile. | A fence that a walk polls to completion runs its callbacks, and a notification runs its owner's code: either may use the syncobj. |
//! | Syncobj waits are not `dma_fence_wait()`s: lockdep sees none of them, and WAIT_FOR_SUBMIT only asserts that no lock is held. | Every syncobj wait that can block, and every wait for submit ([`IfUnsubmitted::WaitForSubmit`](crate::syncobj::IfUnsubmitted::WaitForSubmit) even when the point is there), is a fence wait for the validator; a zero-timeout poll is not. | A syncobj wait blocks on fences all the same. |
//! | A syncobj wait over no handles: Linux 6.12 answers success at once (earlier kernels and igt's `invalid-wait-zero-handles`: `-EINVAL`). | A [`Wait`](crate::syncobj::Wait) over no points answers [`SyncobjWaitError::NoPoints`](crate::SyncobjWaitError::NoPoints) (`EINVAL`). | A wait for any of nothing has no index to answer, and an empty list is a caller's bug more often than a question. `dmabuf-linux` passes the kernel's answer through. |
//! | A syncobj wait reports a point that signalled with an error as done. | The same ([`Wait`](crate::syncobj::Wait)); unlike the crate's fence, resv and sync-file waits it does not answer the error. The error is on the point's leaf fence, not on its chain node (nor in the kernel). | Kernel semantics for the kernel's call; the point's fence is at hand. |
//! | `DRM_IOCTL_SYNCOBJ_EVENTFD` signals an eventfd; a registration lives until it fires or its syncobj goes. | [`Syncobj::notify`](crate::syncobj::Syncobj::notify) runs a callback, [`Syncobj::notified`](crate::syncobj::Syncobj::notified) is a future; a registration can be cancelled, and a future keeps its syncobj alive. A panicking callback does not keep the others from running. | In-process first; no fd per wait. |
//! | `drm_syncobj_add_point()` chains the fence its driver caller gives; only TRANSFER flattens with `dma_fence_unwrap_merge()`. | [`Syncobj::add_point`](crate::syncobj::Syncobj::add_point) flattens a chain node first. | Chains never contain chains here. |
//! | `dma_fence_chain_find_seqno()` walks from the head a link at a time, collecting the signalled links it passes. | The newest node of a chain keeps an index of its predecessors once a lookup has walked a few links; [`Fence::find_seqno`](crate::Fence::find_seqno) bisects it and answers the kernel's node ([`chain`](crate::fence::chain), "Lookups"), collecting only below the point. | Every syncobj wait looks its points up: O(log n) instead of O(n) on a timeline of n pending points. |
//!
//! ## Allocations that are not reclaim points
//!
//! For the validator, a reclaim point is an allocation that may evict buffers, and so wait on
//! fences: reported inside a fence signalling section. The library's reclaim points are
//! [`ResvGuard::reserve_fences`](crate::resv::ResvGuard::reserve_fences) and
//! [`ResvGuard::copy_fences`](crate::resv::ResvGuard::copy_fences) (the kernel's
//! `GFP_KERNEL` table allocations: a submission's allocating step, which comes before its
//! fence is published) and
//! [`DeviceMemory::alloc`](crate::buf::exporters::DeviceMemory::alloc); a device-memory
//! eviction, also one a restore into device memory makes room with, runs as a reclaim path.
//!
//! Every other allocation on the library's paths comes from the process heap, which here
//! never evicts a buffer or waits on a fence, so it cannot close a reclaim cycle and is not
//! annotated, though its kernel counterpart allocates with `GFP_KERNEL` and lockdep reports
//! it inside a signalling section:
//!
//! * fences: [`FenceContext::fence`](crate::FenceContext::fence) and the calls built on it,
//!   [`Timeline::create_fence`](crate::Timeline::create_fence) (kernel: a driver's fence
//!   allocation, sw_sync's point);
//! * containers: [`Fence::new_array`](crate::Fence::new_array), chain nodes,
//!   [`merge`](crate::fence::unwrap::merge) (kernel: `dma_fence_array_create()`,
//!   `dma_fence_chain_alloc()`, `dma_fence_unwrap_merge()`), and the lookup index of a
//!   chain's newest node, which [`Fence::find_seqno`](crate::Fence::find_seqno) makes and
//!   copies (no kernel counterpart);
//! * snapshots of a reservation object: [`Resv::get_fences`](crate::resv::Resv::get_fences),
//!   [`Resv::get_singleton`](crate::resv::Resv::get_singleton)'s array (kernel:
//!   `dma_resv_get_fences()`'s `krealloc_array()`, `dma_resv_get_singleton()`), the copy an
//!   unlocked walk takes ([`Resv::iter_unlocked`](crate::resv::Resv::iter_unlocked); the
//!   kernel's walk holds the RCU read lock instead), and a thread's reader slot on its first
//!   walk (128 bytes, kept for the process);
//! * callbacks: the box [`Fence::add_callback`](crate::Fence::add_callback) keeps a closure
//!   in, and the callback a [`Resv::ready`](crate::resv::Resv::ready) future arms (kernel: the
//!   caller embeds its `dma_fence_cb`, nothing is allocated);
//! * sync files: [`SyncFile::new`](crate::SyncFile::new), [`merge`](crate::SyncFile::merge),
//!   [`export`](crate::SyncFile::export) (kernel: `sync_file_create()`, `sync_file_merge()`);
//! * buffers: [`DmaBuf::export`](crate::buf::DmaBuf::export), attachments, a mapping's
//!   segment list, the host memory of the system-heap and memfd exporters and an eviction's
//!   copy (kernel: `dma_buf_export()`, `dma_buf_attach()`, `sg_alloc_table()`, the exporters'
//!   page allocations);
//! * the validator's own records.
//!
//! Code that must also hold in the kernel keeps these out of its signalling sections itself.
