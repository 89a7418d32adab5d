//! The `dmabuf` command's library half: what the subcommands do, callable without the binary
//! (the tests drive the demo through it).

pub mod demo;
pub mod trace;
