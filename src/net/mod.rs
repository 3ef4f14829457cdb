//! Reaching the server: configuration, multi-host lists, sessions and read replicas. Stands on
//! the ground layer alone. Each module is re-exported at the crate root.

pub mod config;
pub mod hosts;
pub mod replica;
pub mod session;
