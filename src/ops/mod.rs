//! Operating a database: migrations, roles, adoption of a Django database, dumps, fixtures and
//! the zero-setup private cluster. Stands on every layer below. Each module is re-exported at
//! the crate root.

pub mod adopt;
// The command line's seed data (`ledger seed`). It stays in the library, hidden, because it
// writes movements with chosen past times (`transactions::post_batch_at`), which the public API
// never does.
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod demo;
pub mod dump;
pub mod fixture;
pub mod grants;
#[cfg(all(unix, feature = "local"))]
pub mod local;
pub mod schema;
