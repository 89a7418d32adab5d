//! The kernel's point lookup written over the library's public walk, for the chain lookup
//! tests and the chain bench to compare `Fence::find_seqno` with.

use dmabuf::fence::{Fence, chain};

/// `dma_fence_chain_find_seqno()`'s loop over `chain::walk`, a link at a time, for a lookup
/// already checked (a point of 0 answers the head).
pub fn kernel_find_seqno(head: &Fence, seqno: u64) -> Option<Fence> {
    if seqno == 0 {
        return Some(head.clone());
    }
    let context = head.context();
    let mut node = head.clone();
    loop {
        if node.context() != context || !node.is_chain() || node.chain_prev_seqno() < seqno {
            return Some(node);
        }
        node = chain::walk(node)?;
    }
}
