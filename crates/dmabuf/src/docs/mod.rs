//! Longer topics: the rules this crate enforces and where it differs from the kernel.

pub mod differences_from_kernel;
pub mod kernel_bugs;
