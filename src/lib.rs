//! `ledger`: every PostgreSQL operation of the "PostgreSQL with Django" cheat sheet as typed,
//! hand-written SQL that the compiler checks against the schema.
//!
//! Each table has a module (`users`, `accounts`, `transactions`, `payments`, `articles`) whose
//! functions take an executor — a `&PgPool`, a `&mut PgConnection` or a `&mut *tx` — so callers
//! compose them inside their own transactions. Every query is a `sqlx::query!`-family macro
//! checked at build time, offline, from the committed `.sqlx/` directory. Money is
//! [`rust_decimal::Decimal`], ids are UUID newtypes, times are `DateTime<Utc>`.
//!
//! ```no_run
//! # async fn tour() -> ledger::Result<()> {
//! // DATABASE_URL, the seed's DB_* variables, or else a private cluster started on demand.
//! let config = ledger::Config::resolve().await?;
//! let pool = config.connect().await?;
//! ledger::schema::migrate(&mut *pool.acquire().await?).await?;
//! for migration in ledger::schema::status(&mut *pool.acquire().await?).await? {
//!     println!("{} {} applied={}", migration.version, migration.description, migration.applied);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Where the cheat sheet is wrong, the crate says what it chose in the module concerned: the
//! filters on `balance` and `status` live on [`accounts`], the aggregate's `'success'` status is
//! `'completed'` (see [`transactions`]), and the undefined `Article` model is defined in
//! [`articles`].

#![warn(missing_docs)]

pub mod accounts;
pub mod articles;
pub mod atomic;
pub mod bulk;
pub mod config;
pub mod copy;
pub mod demo;
pub mod dump;
mod error;
mod ids;
pub mod local;
pub mod page;
pub mod payments;
pub mod schema;
pub mod transactions;
pub mod users;

pub use config::Config;
pub use error::{Error, Result, Transient, sqlstate};
pub use schema::MIGRATOR;
