//! One module per table, with the paging, bulk-write and `COPY` helpers they share. Stands on the
//! ground layer. Each module is re-exported at the crate root.

pub mod accounts;
pub mod articles;
pub mod bulk;
pub mod copy;
pub mod page;
pub mod payments;
pub mod users;
