//! The rules, each in plain words with a minimal violation: see [`rules`].

pub mod rules;
