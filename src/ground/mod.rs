//! The ground layer: errors, ids, typed names, numbers, documents, keyset cursors and telemetry.
//! Nothing here uses another layer. Each module is re-exported at the crate root.

pub(crate) mod error;
pub(crate) mod generator;

pub mod cursor;
pub mod document;
pub mod ids;
pub mod kinds;
pub mod numeric;
pub mod telemetry;
