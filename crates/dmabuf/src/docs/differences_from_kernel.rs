//! # Differences from the kernel
//!
//! The model follows the kernel's dma-buf subsystem as of 2026 (see the project's
//! `kernel-semantics.md` §0 for the generation chosen where the kernel changed). Where this
//! crate differs, it is on purpose:
//!
//! | Kernel | Here | Why |
//! |---|---|---|
//! | Any holder of a fence pointer can call `dma_fence_signal()`; double signal is ignored (old: `-EINVAL`). | Only the [`Signaller`](crate::Signaller) can signal, and `signal` consumes it. | A second signal cannot be written. |
//! | A fence never signalled is a bug found by review. | A dropped [`Signaller`](crate::Signaller) signals `ECANCELED` and reports the leak. | Every fence signals eventually. |
//! | `dma_fence_set_error()` WARNs on a bad errno. | [`Errno`](crate::Errno) cannot hold a bad value. | Typed. |
//! | `dma_fence_is_later()` on two contexts WARNs and says `false`. | [`Error::ContextMismatch`](crate::Error). | A silent `false` hides bugs. |
//! | `dma_fence_context_alloc()` adds to a 64-bit counter without a check. | The counter never wraps: [`try_alloc_contexts`](crate::fence::try_alloc_contexts) answers [`Error::ContextsExhausted`](crate::Error) (`ENOSPC`) when fewer ids are left than asked for; [`alloc_contexts`](crate::fence::alloc_contexts) and [`FenceContext::new`](crate::fence::FenceContext::new) panic (only after reservations of about 2^64 ids). | A wrapped counter hands out ids in use: two timelines would compare and merge as one. |
//! | Callbacks run under the fence spinlock with interrupts off. | Callbacks run in the signalling thread after the lock is released; `remove` waits for running callbacks. | Containers need no irq_work; a callback may use its own fence. |
//! | `enable_signaling` runs under the fence lock. | Ops hooks run without the fence lock. | König's proposal; hooks may call fence methods. |
//! | Ops are detached on signal; names then read "detached-driver". | Ops are dropped on signal; names live in the context and survive. | Names stay useful in listings. |
//! | `dma_fence_array` `signal_on_any` (removed 2026). | Not offered; use [`wait_any`](crate::fence::wait_any). | Follows mainline. |
//! | Merge of only-signalled fences allocates a private stub. | Returns the signalled leaf with the latest timestamp (a private stub only if that leaf failed). | No allocation; same status and timestamp. |
//! | `dma_resv_get_singleton()` over an entry that is a container (put there by `dma_resv_replace_fences()`) builds an array holding it, with a WARN. | [`Resv::get_singleton`](crate::resv::Resv::get_singleton) builds the array from the entries' unsignalled leaves. | Arrays hold leaves only; the result still waits for everything. |
//! | Every `dma_fence_wait_timeout()` is a wait for lockdep (`__dma_fence_might_wait()`), timeout 0 included. | A zero-timeout wait enables signalling and looks, as the kernel's, but is not a wait for the validator. | It cannot block, so a callback may poll. |
//! | Merge dedups one context by sorting with `dma_fence_is_later()` and keeps the first fence, whichever that is when a 32-bit timeline's fences span half the circle or more (no fence is later than all). | [`merge`](crate::fence::unwrap::merge) sorts by a total order, then keeps per context the fences that between them are the same point as or later than every input: one within half the circle, two or three beyond. | Never panics; never drops a point nothing else waits for. |
//! | Waits may be interruptible (`-ERESTARTSYS`). | No interruptible fence waits. | User space has no signals. |
//! | sw_sync unlinks a pending point when its last reference goes. | A pending point lives until its timeline passes it or closes. | Simpler; bounded by the timeline. |
//! | Mismatched importer and exporter: since 2025 the kernel pins on map instead of caching at attach. | Maps at attach, bidirectionally, pinning a dynamic exporter, and caches the mapping ([`buf::Attachment`](crate::buf::Attachment)). | The seeds' (001) generation, chosen by the project. |
//! | A mapping is an `sg_table` of physical pages mapped through the DMA API. | A list of [`Segment`](crate::buf::Segment)s in a per-device address space whose accesses fault once unmapped. | Stale mappings show up in tests. |
//! | Locked callbacks trust `dma_resv_assert_held()`. | They take a guard ([`Locked`](crate::buf::Locked)); a guard of another buffer is [`Error::WrongLock`](crate::Error). | The proof is in the type. |
//! | A mapping not unmapped before detach leaks (WARN at best); one still in use after detach is a use after free. | Detach unmaps every mapping left, live ones too, and drops leftover pins, with a warning; a [`Mapping`](crate::buf::Mapping) used after its detach faults ([`Error::Fault`](crate::Error)) and its `unmap` is a no-op. | Nothing leaks, and no device window outlives the pin that kept the storage under it. |
//! | debugfs `bufinfo` locks each buffer's reservation object. | [`bufinfo`](crate::buf::bufinfo) reads fences lock-free. | Callable while holding a reservation lock. |
//! | `DMA_BUF_SET_NAME` on an attached buffer answered `-EBUSY` (before 2022). | Renaming is always allowed, as in mainline. | Follows mainline. |
//! | A sync file is an fd; a dma-buf's `poll()` arms one callback per direction. | [`SyncFile`](crate::SyncFile) is a value (the uapi layer gives it an fd); every [`Resv::ready`](crate::resv::Resv::ready) future arms its own callback. | In-process first; no shared wait queue to contend on. |
