//! `ledger`: every PostgreSQL operation of the "PostgreSQL with Django" cheat sheet as typed,
//! hand-written SQL that the compiler checks against the schema.
//!
//! Each table has a module ([`users`], [`accounts`], [`transactions`], [`payments`],
//! [`articles`]); every query is a `sqlx::query!`-family macro checked at build time, offline,
//! from the committed `.sqlx/` directory. Money is [`Decimal`], ids are typed newtypes (UUIDs, and
//! Django's `bigint` for payments and articles: [`ids`]), times are [`DateTime<Utc>`](DateTime),
//! and every failure is a variant of one [`Error`].
//!
//! # Start here
//!
//! Connect, check that the schema is the one this build expects, open an account, move money
//! with an idempotency key, page, stream, and match on an error. The service does not migrate:
//! `ledger migrate` (or [`schema::migrate`]) runs as a release step, as the tables' owner, before
//! the new release starts ([`schema`] says how). A consumer needs only `ledger` and `tokio`: every foreign type in the signatures is
//! re-exported here ([`Decimal`], [`Uuid`], [`DateTime`], [`Utc`], [`Value`], [`json!`],
//! [`PgPool`], [`PgConnection`], [`TryStreamExt`], [`sqlx`] itself).
//!
//! ```no_run
//! use ledger::transactions::{self, Movement, Transfer};
//! use ledger::users::{self, NewUser};
//! use ledger::{Config, Decimal, Error, TryStreamExt, accounts, json, schema};
//!
//! # async fn service() -> ledger::Result<()> {
//! // DATABASE_URL or the seed's DB_* variables; a clear error when neither is set.
//! let pool = Config::resolve()?.connect().await?;
//! // Refuses to start, naming what is pending, on a schema behind (or ahead of) this build.
//! schema::check(&mut *pool.acquire().await?).await?;
//!
//! // One statement: any executor (`&pool`, `&mut *conn`, `&mut *tx`).
//! let ana = users::insert(&pool, &NewUser::new("ana@example.com", "Ana García")).await?;
//! let bob = users::insert(&pool, &NewUser::new("bob@example.com", "Bob")).await?;
//! let from = accounts::open(&pool, ana.id, Some("USD")).await?;
//! let to = accounts::open(&pool, bob.id, Some("USD")).await?;
//!
//! // A unit of work: a connection it can open a transaction (or a savepoint) on.
//! let mut conn = pool.acquire().await?;
//! transactions::deposit(&mut conn, &Movement::new(from.id, Decimal::new(10_000, 2))).await?;
//! let pay = Transfer::new(from.id, to.id, Decimal::new(2_500, 2))
//!     .metadata(json!({ "invoice": "INV-7" }))
//!     .idempotency_key("invoice-INV-7");
//! let entry = loop {
//!     match transactions::transfer(&mut conn, &pay).await {
//!         // Lost connection, restart, cancelled statement: with a key, repeating is safe.
//!         Err(err) if err.is_transient() => conn = pool.acquire().await?,
//!         result => break result?,
//!     }
//! };
//! assert_eq!(entry.amount, Decimal::new(2_500, 2));
//!
//! // Django's Paginator, then Django's `.iterator()`.
//! let page = users::UserQuery::new().per_page(20).page(&mut conn, 1).await?;
//! println!("{} of {} users", page.items.len(), page.spec.paginator().count());
//! let mut entries = transactions::stream_all(&pool);
//! while let Some(entry) = entries.try_next().await? {
//!     println!("{} {}", entry.kind, entry.amount);
//! }
//!
//! // Typed errors to branch on.
//! let overdraft = Movement::new(to.id, Decimal::new(1_000_000, 2));
//! match transactions::withdraw(&mut conn, &overdraft).await {
//!     Err(Error::InsufficientFunds { balance, .. }) => println!("only {balance} there"),
//!     other => println!("{other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Who takes what
//!
//! | a function that ... | takes | because |
//! | :--- | :--- | :--- |
//! | runs one statement (every `get`, `find_*`, `list_*`, `insert`, `update_*`, `delete`, keyset page, report) | `impl PgExecutor` | it composes in any transaction: pass `&pool`, `&mut *conn` or `&mut *tx` |
//! | runs several statements that must see one connection (`UserQuery::page`, `UserQuery::get_page`, `UserQuery::keyset_with_accounts`, `dump::load`) | `&mut PgConnection` | a pool does not promise the same connection between two statements |
//! | is a unit of work that begins a transaction or savepoint (`transactions::deposit`, `withdraw`, `transfer`, `post_batch`, `post_batch_with_key`, the bulk loaders) | `&mut PgConnection` | it calls `begin`: its own transaction on a pooled connection, a savepoint inside yours |
//! | holds a connection across calls on its own (`transactions::chunks`, `dump::dump`) | `&PgPool` | it acquires and releases a connection per chunk |
//!
//! # Layers
//!
//! The crate's modules point one way, in five layers, each a folder of `src/` that
//! `.ci/module-graph.py` checks (an import up a layer, a cycle, or a module outside the folders
//! fails CI). Each module is re-exported at the root, so its path is `ledger::users`, whatever
//! folder it lives in.
//!
//! | layer (`src/...`) | modules | stands on |
//! | :--- | :--- | :--- |
//! | `ground/` | [`Error`] (`error`), the id newtypes ([`ids`]), the typed names ([`kinds`]), [`numeric`], [`document`], [`cursor`], [`telemetry`] | nothing of the crate |
//! | `net/` | [`config`], multi-host lists ([`hosts`]), [`session`], [`replica`] | ground |
//! | `tables/` | one module per table ([`users`], [`accounts`], [`payments`], [`articles`]), with [`page`], [`bulk`] and the `COPY` encoder [`copy`] (`users` reads `accounts` for its prefetch, never the other way) | ground |
//! | `money/` | the units of work that span tables: [`transactions`]' movements and batches, [`atomic`] | tables, ground |
//! | `ops/` | [`schema`], [`grants`], [`adopt`], [`dump`], [`fixture`], the zero-setup cluster (`local`, feature `local`, unix only) | all below |
//!
//! The command line (feature `cli`, `src/bin/ledger/`) is on top, and the library never needs
//! it. (Its seed data, `ops/demo.rs`, is compiled with the feature only: it backdates movements,
//! which the public API never does.)
//!
//! # Features
//!
//! - `tls` (default): TLS with rustls, for `sslmode=require`, `verify-ca`, `verify-full`
//!   (see [`config`]).
//! - `local` (default, unix only): `ledger::local`, the private PostgreSQL cluster started from
//!   the installed binaries, and `Config::resolve_or_local`, the zero-setup path of the tests and
//!   the command line. A service should not call it.
//! - `metrics` (off): counters and timings through the `metrics` facade (see [`telemetry`]).
//! - `cli` (default): the `ledger` binary. A library user sets `default-features = false`
//!   (adding `tls` back as needed) and compiles none of the command line's crates.
//!
//! Where the cheat sheet is wrong, the crate says what it chose in the module concerned: the
//! filters on `balance` and `status` live on [`accounts`], the aggregate's `'success'` status is
//! this crate's `'completed'`, and both count as applied (see [`transactions`]), and the undefined `Article` model is defined in
//! [`articles`].

#![warn(missing_docs)]

// The query macros name id types as `::ledger::ids::...` (see `sqlx.toml`), which must resolve
// inside this crate as well as in its tests and examples.
extern crate self as ledger;

mod ground;
mod money;
mod net;
mod ops;
mod tables;

// Every module at the root, as `ledger::<module>`: the folders are the layers, not the paths.
use ground::error;
pub use ground::{cursor, document, ids, kinds, numeric, telemetry};
pub use money::{atomic, transactions};
pub use net::{config, hosts, replica, session};
#[cfg(feature = "cli")]
#[doc(hidden)]
pub use ops::demo;
#[cfg(all(unix, feature = "local"))]
pub use ops::local;
pub use ops::{adopt, dump, fixture, grants, schema};
pub use tables::{accounts, articles, bulk, copy, page, payments, users};

/// The README's code, compiled as a doc test so that the front page's example cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use config::Config;
pub use document::Document;
pub use error::{Error, Result, Transient, report, sqlstate};
pub use schema::MIGRATOR;

// The foreign types of the public signatures, so that a consumer needs only `ledger` and `tokio`.
pub use chrono::{self, DateTime, Utc};
pub use futures::{Stream, StreamExt, TryStreamExt};
pub use rust_decimal::{self, Decimal};
pub use serde_json::{self, Value, json};
pub use sqlx::{self, Acquire, PgConnection, PgExecutor, PgPool, postgres::PgPoolOptions};
pub use uuid::{self, Uuid};
