//! `ledger`: the crate's command line (the seed's management commands, and the tour).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod progress;
mod table;
mod tour;
use ledger::dump::{self, Table};
use ledger::fixture;
use ledger::local::Cluster;
use ledger::{Config, adopt, schema};

/// Every PostgreSQL operation of the Django cheat sheet, as typed SQL.
///
/// With no database configured (no --database-url, DATABASE_URL or DB_NAME, in the environment or
/// a .env file), ledger starts a private PostgreSQL cluster from the installed binaries.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Logging: LEDGER_LOG takes a tracing filter (default \"warn,sqlx=error\"), \
                  e.g. LEDGER_LOG=debug or LEDGER_LOG=ledger=debug,sqlx=info; logs go to stderr."
)]
struct Cli {
    /// The database to use (postgres://user:password@host:port/db); prefer the environment, which
    /// keeps the password out of the process list.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// Whether `--database-url` itself was given (rather than `DATABASE_URL`).
    #[arg(skip)]
    url_on_command_line: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, then run the cheat sheet's operations and print what each returns.
    Tour,
    /// Apply pending migrations (`manage.py migrate`), or revert down to a version.
    Migrate {
        /// Revert down to this version instead (0 reverts everything: `migrate myapp zero`).
        #[arg(long)]
        target: Option<i64>,
    },
    /// List migrations and whether each is applied (`manage.py showmigrations`).
    Status,
    /// Load deterministic demo data through the bulk paths.
    Seed {
        /// How many users (each gets 1 to 3 accounts, movements, and more).
        #[arg(long, default_value_t = 1_000)]
        users: u64,
        /// The generator's seed: the same seed gives the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
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

#[derive(Debug, Subcommand)]
enum DbCommand {
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
fn table_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Table::ALL.map(Table::name))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG")
                .unwrap_or_else(|_| "warn,sqlx=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    cli.url_on_command_line =
        matches.value_source("database_url") == Some(clap::parser::ValueSource::CommandLine);
    let mut out = std::io::stdout().lock();
    match run(cli, &mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = out.flush();
            eprintln!("error: {}", chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The error and its sources on one line.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        // sqlx's errors print their source in their own text: say each cause once.
        let cause = s.to_string();
        if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = s.source();
    }
    text
}

/// Opens a pool; a failure names what was tried.
async fn connect(config: &Config) -> AnyResult<sqlx::PgPool> {
    config.connect().await.map_err(|e| unreachable(config, &e))
}

/// Opens one connection; a failure names what was tried.
async fn connect_one(config: &Config) -> AnyResult<sqlx::PgConnection> {
    config
        .connect_one()
        .await
        .map_err(|e| unreachable(config, &e))
}

fn unreachable(config: &Config, err: &ledger::Error) -> Box<dyn std::error::Error> {
    format!(
        "cannot connect to {}: {} (is the server running, and is DATABASE_URL right?)",
        config.target(),
        chain(err)
    )
    .into()
}

type AnyResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

async fn config(cli: &Cli) -> ledger::Result<Config> {
    // An empty DATABASE_URL means unset, as it does for the library's own configuration.
    match cli.database_url.as_deref().filter(|url| !url.is_empty()) {
        Some(url) => Config::from_url(url),
        None => Config::resolve_or_local().await,
    }
}

async fn run(cli: Cli, out: &mut impl Write) -> AnyResult {
    match &cli.command {
        Command::Tour => tour::run(&config(&cli).await?, out).await,
        Command::Migrate { target } => {
            let config = config(&cli).await?;
            let mut conn = connect_one(&config).await?;
            match target {
                Some(target) => schema::revert_to(&mut conn, *target).await?,
                None => schema::migrate(&mut conn).await?,
            }
            print_status(&mut conn, out).await
        }
        Command::Status => {
            let mut conn = connect_one(&config(&cli).await?).await?;
            print_status(&mut conn, out).await
        }
        Command::Db { command } => db(&cli, command, out).await,
        Command::Seed { users, seed } => {
            let config = config(&cli).await?;
            let mut conn = connect_one(&config).await?;
            schema::migrate(&mut conn).await?;
            let bars = progress::Bars::new();
            let mut report = |stage: &str, done: u64, total: u64| bars.update(stage, done, total);
            let started = std::time::Instant::now();
            let r = ledger::demo::seed(&mut conn, *users, *seed, &mut report)
                .await
                .map_err(|e| match e.constraint() {
                    Some(_) if matches!(e, ledger::Error::UniqueViolation { .. }) => format!(
                        "the database already holds the demo rows of --seed {seed} ({}); \
                         seed an empty database, or pass another --seed",
                        chain(&e)
                    )
                    .into(),
                    _ => Box::<dyn std::error::Error>::from(e),
                })?;
            bars.finish();
            writeln!(
                out,
                "seeded {} users, {} accounts, {} ledger entries, {} payments, {} articles in {:.1?}",
                r.users,
                r.accounts,
                r.entries,
                r.payments,
                r.articles,
                started.elapsed()
            )?;
            Ok(())
        }
        Command::Dump {
            tables,
            output,
            format,
            app_label,
        } => {
            let tables = tables
                .iter()
                .map(|t| t.parse::<Table>())
                .collect::<Result<Vec<_>, _>>()?;
            let django = format == "django";
            if django && !tables.is_empty() {
                return Err("--table applies to the ndjson format only".into());
            }
            let pool = connect(&config(&cli).await?).await?;
            let bars = progress::Bars::new();
            let mut report = |table: Table, rows: u64| bars.update(table.name(), rows, 0);
            let records = match output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .map_err(|e| format!("creating {}: {e}", path.display()))?;
                    let mut file = std::io::BufWriter::new(file);
                    if django {
                        fixture::dump(&pool, app_label, &mut file, &mut report).await?
                    } else {
                        dump::dump(&pool, &tables, &mut file, &mut report).await?
                    }
                }
                None => {
                    let mut stdout = std::io::BufWriter::new(std::io::stdout());
                    if django {
                        fixture::dump(&pool, app_label, &mut stdout, &mut report).await?
                    } else {
                        dump::dump(&pool, &tables, &mut stdout, &mut report).await?
                    }
                }
            };
            bars.finish();
            eprintln!("dumped {records} records");
            Ok(())
        }
        Command::Load { file, app_label } => {
            let config = config(&cli).await?;
            let mut conn = connect_one(&config).await?;
            schema::migrate(&mut conn).await?;
            let bars = progress::Bars::new();
            let mut report = |table: Table, rows: u64| bars.update(table.name(), rows, rows);
            let records = if fixture::is_fixture(file)? {
                fixture::load(&mut conn, file, app_label, &mut report).await?
            } else {
                dump::load(&mut conn, file, &mut report).await?
            };
            bars.finish();
            writeln!(out, "loaded {records} records")?;
            Ok(())
        }
        Command::Adopt {
            app_label,
            apply,
            json,
        } => {
            let mut conn = connect_one(&config(&cli).await?).await?;
            let report = if *apply {
                let mut step = |step: &adopt::Step| eprintln!("{} [{}]", step.name, step.lock);
                adopt::apply(&mut conn, app_label, &mut step).await?
            } else {
                adopt::inspect(&mut conn, app_label).await?
            };
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                write!(out, "{report}")?;
                if !*apply && !report.is_adopted() {
                    writeln!(
                        out,
                        "
Dry run: nothing was changed. Run again with --apply."
                    )?;
                }
            }
            Ok(())
        }
        Command::Shell { args } => {
            let config = config(&cli).await?;
            let mut psql = std::process::Command::new("psql");
            psql.args(args).envs(config.libpq_env());
            // exec only returns on failure; the password travels in PGPASSWORD, never in argv.
            let err = std::os::unix::process::CommandExt::exec(&mut psql);
            Err(format!("running psql: {err} (install the PostgreSQL client: apt-get install postgresql-client)").into())
        }
    }
}

async fn db(cli: &Cli, command: &DbCommand, out: &mut impl Write) -> AnyResult {
    match command {
        DbCommand::Url { database } => {
            let config = config(cli).await?;
            let config = match database {
                Some(name) => {
                    // Only in the private cluster: a configured server's databases are its owner's.
                    if let ledger::config::Source::LocalCluster(_) = config.source() {
                        config.create_database(name).await?;
                    }
                    config.with_database(name)
                }
                None => config,
            };
            writeln!(out, "{}", config.url())?;
        }
        DbCommand::Stop { dir } => {
            if cli.url_on_command_line {
                return Err("db stop stops the private cluster; the server named by \
                            --database-url is not ledger's to stop"
                    .into());
            }
            let dir = dir.clone().unwrap_or_else(Cluster::default_dir);
            let stopped = tokio::task::spawn_blocking(move || Cluster::stop(&dir)).await??;
            writeln!(out, "{}", if stopped { "stopped" } else { "not running" })?;
        }
    }
    Ok(())
}

async fn print_status(conn: &mut sqlx::PgConnection, out: &mut impl Write) -> AnyResult {
    for m in schema::status(conn).await? {
        let mark = if m.applied { "[X]" } else { "[ ]" };
        writeln!(out, " {mark} {:04}_{}", m.version, m.description)?;
    }
    Ok(())
}
