//! The units of work that move money across tables: movements, batches, the shared-commit
//! poster, and the atomic operations. Stands on the tables and the ground. Each module is
//! re-exported at the crate root.

pub mod atomic;
pub mod transactions;
