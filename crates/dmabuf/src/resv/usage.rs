//! How a fence in a reservation object is to be waited for (kernel: `enum dma_resv_usage`).

/// How a fence in a reservation object is to be waited for (kernel: `enum dma_resv_usage`).
///
/// Ordered: a query for a usage returns every fence of that usage and lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Usage {
    /// Kernel memory management (moves, clears): everybody waits, always.
    Kernel = 0,
    /// Implicit-sync writers: new readers and writers wait.
    Write = 1,
    /// Implicit-sync readers: new writers wait.
    Read = 2,
    /// No implicit sync (preemption fences, page-table updates, explicitly synced work):
    /// only memory management waits.
    Bookkeep = 3,
}

impl Usage {
    /// Every usage, in order.
    pub const ALL: [Usage; 4] = [Usage::Kernel, Usage::Write, Usage::Read, Usage::Bookkeep];

    /// What an implicitly synced access must wait for (kernel: `dma_resv_usage_rw()`): a
    /// writer waits for readers and writers (`Read`), a reader for writers (`Write`).
    ///
    /// ```
    /// use dmabuf::resv::Usage;
    /// assert_eq!(Usage::rw(true), Usage::Read);
    /// assert_eq!(Usage::rw(false), Usage::Write);
    /// ```
    pub fn rw(write: bool) -> Usage {
        if write { Usage::Read } else { Usage::Write }
    }

    pub(crate) fn from_raw(raw: u8) -> Usage {
        match raw {
            0 => Usage::Kernel,
            1 => Usage::Write,
            2 => Usage::Read,
            _ => Usage::Bookkeep,
        }
    }

    /// The kernel's name for the usage, as `dma_resv_describe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Usage::Kernel => "kernel",
            Usage::Write => "write",
            Usage::Read => "read",
            Usage::Bookkeep => "bookkeep",
        }
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
