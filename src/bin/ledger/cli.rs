//! The command line's arguments, as clap reads them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ledger::dump::Table;

use crate::settings;

/// Every PostgreSQL operation of the Django cheat sheet, as typed SQL.
///
/// The database is configured as the library configures it: --database-url, else DATABASE_URL,
/// else the seed's DB_NAME, DB_USER, DB_PASSWORD, DB_HOST, DB_PORT, with DB_MAX_CONNECTIONS and
/// DB_TRANSACTION_POOLER beside either, in the environment or a .env file (`ledger config` shows
/// what was found). With none of them, ledger starts a private PostgreSQL cluster from the
/// installed binaries.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Logging: LEDGER_LOG takes a tracing filter (default \"warn,sqlx=error\"), \
                  e.g. LEDGER_LOG=debug or LEDGER_LOG=ledger=debug,sqlx=info; logs go to stderr."
)]
pub(crate) struct Cli {
    /// The database to use (postgres://user:password@host:port/db), in place of DATABASE_URL;
    /// prefer DATABASE_URL, which keeps the password out of the process list.
    #[arg(long, global = true)]
    pub(crate) database_url: Option<String>,

    /// Which variables the environment set before `.env` was read (for `ledger config`).
    #[arg(skip)]
    pub(crate) origins: settings::Origins,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the cheat sheet's operations and print what each returns (migrating first in the
    /// private cluster, or with --migrate).
    Tour {
        #[command(flatten)]
        migrate: MigrateFlag,
    },
    /// Apply pending migrations (`manage.py migrate`), or revert down to a version.
    Migrate {
        /// Revert down to this version instead (0 reverts everything: `migrate myapp zero`).
        /// Says what it would drop, and does it only with --yes.
        #[arg(long)]
        target: Option<i64>,
        /// Revert, after saying what is dropped (with --target).
        #[arg(long)]
        yes: bool,
    },
    /// List migrations and whether each is applied (`manage.py showmigrations`); only reads.
    Status,
    /// Print the resolved database settings and where each came from (the password redacted).
    Config,
    /// Print, or with --apply grant, the privileges of a service role (reads and writes rows)
    /// and a read-only role (standbys, reports, dumps), for roles that already exist.
    Grants {
        /// The role the service connects as.
        #[arg(long, value_name = "ROLE")]
        service: Option<String>,
        /// The role that only reads.
        #[arg(long = "read-only", value_name = "ROLE")]
        read_only: Option<String>,
        /// Grant them (as the owner of ledger's tables), in one transaction. Idempotent.
        #[arg(long)]
        apply: bool,
    },
    /// Delete idempotency keys older than their lifetime, in small batches, on a live database
    /// (a repeat of a single movement after it is refused; of a batch, applied again).
    PruneKeys {
        /// The keys' lifetime, in days (at least 1 hour's worth: fractions are fine).
        #[arg(long, default_value_t = 7.0)]
        keep_days: f64,
        /// Keys deleted per transaction.
        #[arg(long, default_value_t = ledger::transactions::PRUNE_BATCH)]
        batch: i64,
    },
    /// Load deterministic demo data through the bulk paths.
    Seed {
        /// How many users (each gets 1 to 3 accounts, movements, and more).
        #[arg(long, default_value_t = 1_000)]
        users: u64,
        /// The generator's seed: the same seed gives the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write demo rows into a database that is not the private cluster.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        migrate: MigrateFlag,
    },
    /// Write tables as NDJSON (`manage.py dumpdata`), streamed in constant memory.
    Dump {
        /// A table to dump (repeatable); all of them when omitted.
        #[arg(long = "table", value_name = "TABLE", value_parser = table_names())]
        tables: Vec<String>,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// `ndjson` (ledger's backup, every column) or `django` (a fixture `manage.py loaddata`
        /// reads: the seed's models and their fields).
        #[arg(long, default_value = "ndjson", value_parser = ["ndjson", "django"])]
        format: String,
        /// The Django app label of the fixture's models (`--format django`).
        #[arg(long = "app", value_name = "LABEL", default_value = "myapp")]
        app_label: String,
    },
    /// Load a file written by `ledger dump`, or a Django fixture from `manage.py dumpdata <app>`
    /// (`manage.py loaddata`): all or nothing.
    Load {
        /// The NDJSON file or Django fixture (a JSON array), told apart by its first character.
        file: PathBuf,
        /// The Django app label of a fixture's models.
        #[arg(long = "app", value_name = "LABEL", default_value = "myapp")]
        app_label: String,
        #[command(flatten)]
        migrate: MigrateFlag,
    },
    /// Take over a database that Django migrated: a dry run that lists every change and every
    /// row breaking ledger's rules; with --apply, make the changes, safely on a live database.
    Adopt {
        /// The Django app label the seed's models live in.
        #[arg(long = "app", value_name = "LABEL", default_value = "myapp")]
        app_label: String,
        /// Make the changes (resumes an interrupted run). Without it, nothing is changed.
        #[arg(long)]
        apply: bool,
        /// With --apply: give the model's own NOT NULL columns without a database default (which
        /// ledger's inserts do not name) a default of their type's zero, saying so first.
        #[arg(long, requires = "apply")]
        default_extra_columns: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open psql on the database (`manage.py dbshell`); arguments after `--` go to psql.
    Shell {
        /// Extra arguments for psql, e.g. `-- -c 'select 1'`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// The private PostgreSQL cluster.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

/// `--migrate`, for the commands that write rows.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct MigrateFlag {
    /// Apply pending migrations first (needs the owner role). Without it, only the private
    /// cluster is migrated; a configured database with pending migrations is refused.
    #[arg(long)]
    pub(crate) migrate: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Print the URL of the database in use (without its password), starting the private
    /// cluster if it is the one in use.
    Url {
        /// Another database on the same server (created in the private cluster if missing).
        #[arg(long)]
        database: Option<String>,
    },
    /// Stop the private cluster.
    Stop {
        /// The cluster directory (default: `ledger-pg` in cargo's target directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// The `--table` values, listed by clap when one is wrong.
pub(crate) fn table_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Table::ALL.map(Table::name))
}
