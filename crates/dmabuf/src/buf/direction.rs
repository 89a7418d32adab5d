//! DMA directions (kernel: `enum dma_data_direction`, `include/linux/dma-direction.h`).
//!
//! A mapping is made for a direction, and a CPU access bracket is opened for one: the
//! direction says who writes, and so what a CPU access must wait for.

/// Which way data moves (kernel: `enum dma_data_direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Both ways (kernel: `DMA_BIDIRECTIONAL`).
    Bidirectional,
    /// From memory to the device: the device reads, the CPU wrote (kernel: `DMA_TO_DEVICE`).
    ToDevice,
    /// From the device to memory: the device writes, the CPU will read (kernel:
    /// `DMA_FROM_DEVICE`).
    FromDevice,
}

impl Direction {
    /// Whether a CPU access bracketed with this direction writes the buffer, so that it must
    /// wait for readers as well as writers (kernel: `dma_buf_begin_cpu_access()` treats
    /// `DMA_TO_DEVICE` and `DMA_BIDIRECTIONAL` as writes).
    pub fn cpu_writes(self) -> bool {
        matches!(self, Direction::Bidirectional | Direction::ToDevice)
    }

    /// The kernel's name (`DMA_BIDIRECTIONAL`, …).
    pub fn name(self) -> &'static str {
        match self {
            Direction::Bidirectional => "DMA_BIDIRECTIONAL",
            Direction::ToDevice => "DMA_TO_DEVICE",
            Direction::FromDevice => "DMA_FROM_DEVICE",
        }
    }
}
