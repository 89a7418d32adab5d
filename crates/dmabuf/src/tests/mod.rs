//! Model checks of the lock-free parts, run under `RUSTFLAGS="--cfg loom"`.

mod loom_fence;
mod loom_resv;
