//! `ledger`: the crate's command line (the seed's management commands, and the tour).

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

mod cli;
mod progress;
mod revert;
mod settings;
mod table;
mod tour;
use cli::{Cli, Command, DbCommand, MigrateFlag};
use ledger::config::Source;
use ledger::dump::{self, Table};
use ledger::grants::{self, Roles};
use ledger::local::Cluster;
use ledger::{Config, Error, adopt, fixture, schema};

#[tokio::main]
async fn main() -> ExitCode {
    let origins = settings::Origins::capture();
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
    cli.origins = origins;
    let mut out = std::io::stdout().lock();
    match run(cli, &mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = out.flush();
            eprintln!("error: {}", ledger::report(err.as_ref()));
            ExitCode::FAILURE
        }
    }
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
        ledger::report(err)
    )
    .into()
}

type AnyResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// What a command other than `tour` and `db` says when nothing is configured: it never falls
/// back to the private cluster, where a forgotten `DATABASE_URL` would make a backup of nothing
/// or a migration of the wrong database "succeed".
const NOTHING_CONFIGURED: &str = "no database configured: set DATABASE_URL, or DB_NAME (with \
     DB_USER, DB_PASSWORD, DB_HOST, DB_PORT), or pass --database-url (only `ledger tour` and \
     `ledger db` use the private development cluster)";

/// The configured database ([`Config::from_env`], with `--database-url` in place of
/// `DATABASE_URL`), or one line saying that there is none.
async fn config(cli: &Cli) -> AnyResult<Config> {
    configured(cli)?.ok_or_else(|| NOTHING_CONFIGURED.into())
}

/// The configured database, else the private cluster: for `tour` and `db` only.
async fn config_or_local(cli: &Cli) -> AnyResult<Config> {
    match configured(cli)? {
        Some(config) => Ok(config),
        None => Ok(Config::resolve_or_local().await?),
    }
}

/// Says on stderr which database a command that writes or dumps is about to use (host, port,
/// database and role; never the password), before it starts.
fn announce(command: &str, config: &Config) {
    eprintln!("ledger {command}: {}", config.target());
}

fn configured(cli: &Cli) -> AnyResult<Option<Config>> {
    let configured = match cli.database_url.as_deref() {
        Some(url) => Config::from_env_with_url(url).map_err(|e| match e {
            Error::Config(message) => {
                Error::Config(message.replacen("DATABASE_URL", "--database-url", 1))
            }
            other => other,
        })?,
        None => Config::from_env()?,
    };
    Ok(configured)
}

/// Brings the schema up to date where the command may change it: always in the private
/// cluster, elsewhere only with `--migrate`. Otherwise a database with a pending migration is
/// refused in one line, before anything is written.
async fn ensure_schema(
    config: &Config,
    conn: &mut sqlx::PgConnection,
    flag: MigrateFlag,
) -> AnyResult {
    if flag.migrate || matches!(config.source(), Source::LocalCluster(_)) {
        return schema::migrate(conn)
            .await
            .map_err(|e| explain("migrate", config, e));
    }
    let status = schema::status(conn)
        .await
        .map_err(|e| explain("status", config, e))?;
    let pending: Vec<_> = status.iter().filter(|m| !m.applied).collect();
    if let Some(first) = pending.first() {
        return Err(format!(
            "{} of ledger's migrations are not applied to {} (the first: {:04}_{}): run `ledger \
             migrate` as the role that owns the schema, or pass --migrate",
            pending.len(),
            config.target(),
            first.version,
            first.description
        )
        .into());
    }
    Ok(())
}

/// A failed command's error, with one line of advice when the role lacked a privilege: which
/// role the command needs (owner, service or read-only) and how it gets it.
fn explain(command: &str, config: &Config, err: Error) -> Box<dyn std::error::Error> {
    let Error::PermissionDenied { object, .. } = &err else {
        return err.into();
    };
    let options = config.connect_options();
    let user = options.get_username();
    let need = match command {
        "migrate" | "adopt --apply" | "grants --apply" => format!(
            "`ledger {command}` changes the schema or its grants, which only the role that owns \
             ledger's tables may do"
        ),
        "seed" | "load" | "prune-keys" => format!(
            "`ledger {command}` writes rows: it needs the service role's INSERT, UPDATE and \
             DELETE (`ledger grants --service <role> --apply`, run as the owner, grants them)"
        ),
        _ => format!(
            "`ledger {command}` only reads: it needs SELECT (`ledger grants --read-only <role> \
             --apply`, run as the owner, grants it)"
        ),
    };
    format!("permission denied for {object}: {need}; role {user} lacks it").into()
}

async fn run(cli: Cli, out: &mut impl Write) -> AnyResult {
    match &cli.command {
        Command::Tour { migrate } => {
            let config = config_or_local(&cli).await?;
            let mut conn = connect_one(&config).await?;
            ensure_schema(&config, &mut conn, *migrate).await?;
            tour::run(&config, conn, out).await
        }
        Command::Migrate { target, yes } => {
            let config = config(&cli).await?;
            announce("migrate", &config);
            let mut conn = connect_one(&config).await?;
            match target {
                Some(target) => {
                    revert::confirm(&config, &mut conn, *target, *yes).await?;
                    schema::revert_to(&mut conn, *target).await
                }
                None => schema::migrate(&mut conn).await,
            }
            .map_err(|e| explain("migrate", &config, e))?;
            print_status(&config, &mut conn, out).await
        }
        Command::Status => {
            let config = config(&cli).await?;
            let mut conn = connect_one(&config).await?;
            print_status(&config, &mut conn, out).await
        }
        Command::Config => {
            let config = config(&cli).await?;
            let replicas = Config::replicas_from_env()?.len();
            settings::print(
                &config,
                &cli.origins,
                cli.database_url.is_some(),
                replicas,
                out,
            )
        }
        Command::Grants {
            service,
            read_only,
            apply,
        } => {
            let roles = Roles {
                service: service.as_deref(),
                read_only: read_only.as_deref(),
            };
            let config = config(&cli).await?;
            if *apply {
                announce("grants --apply", &config);
            }
            let mut conn = connect_one(&config).await?;
            let statements = if *apply {
                grants::apply(&mut conn, &roles)
                    .await
                    .map_err(|e| explain("grants --apply", &config, e))?
            } else {
                grants::plan(&mut conn, &roles).await?
            };
            for statement in &statements {
                writeln!(out, "{statement};")?;
            }
            if *apply {
                eprintln!("granted ({} statements)", statements.len());
            }
            Ok(())
        }
        Command::Db { command } => db(&cli, command, out).await,
        Command::PruneKeys { keep_days, batch } => {
            let keep =
                std::time::Duration::try_from_secs_f64(keep_days * 86_400.0).map_err(|_| {
                    format!("--keep-days must be a positive number of days, not {keep_days}")
                })?;
            let config = config(&cli).await?;
            announce("prune-keys", &config);
            let pool = connect(&config).await?;
            let pruned = ledger::transactions::prune_idempotency_keys(&pool, keep, *batch)
                .await
                .map_err(|e| explain("prune-keys", &config, e))?;
            writeln!(
                out,
                "pruned {pruned} idempotency keys older than {keep_days} days"
            )?;
            Ok(())
        }
        Command::Seed {
            users,
            seed,
            yes,
            migrate,
        } => {
            let config = config(&cli).await?;
            announce("seed", &config);
            if !*yes && !matches!(config.source(), Source::LocalCluster(_)) {
                return Err(format!(
                    "seed writes demo rows into {}: pass --yes to do it",
                    config.target()
                )
                .into());
            }
            let mut conn = connect_one(&config).await?;
            ensure_schema(&config, &mut conn, *migrate).await?;
            let bars = progress::Bars::new();
            let mut report = |stage: &str, done: u64, total: u64| bars.update(stage, done, total);
            let started = std::time::Instant::now();
            let r = ledger::demo::seed(&mut conn, *users, *seed, &mut report)
                .await
                .map_err(|e| match e.constraint() {
                    Some(_) if matches!(e, ledger::Error::UniqueViolation { .. }) => format!(
                        "the database already holds the demo rows of --seed {seed} ({}); \
                         seed an empty database, or pass another --seed",
                        ledger::report(&e)
                    )
                    .into(),
                    _ => explain("seed", &config, e),
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
            let config = config(&cli).await?;
            announce("dump", &config);
            let pool = connect(&config).await?;
            let bars = progress::Bars::new();
            let mut report = |table: Table, rows: u64| bars.update(table.name(), rows, 0);
            let records = match output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .map_err(|e| format!("creating {}: {e}", path.display()))?;
                    let mut file = std::io::BufWriter::new(file);
                    if django {
                        fixture::dump(&pool, app_label, &mut file, &mut report).await
                    } else {
                        dump::dump(&pool, &tables, &mut file, &mut report).await
                    }
                }
                None => {
                    let mut stdout = std::io::BufWriter::new(std::io::stdout());
                    if django {
                        fixture::dump(&pool, app_label, &mut stdout, &mut report).await
                    } else {
                        dump::dump(&pool, &tables, &mut stdout, &mut report).await
                    }
                }
            }
            .map_err(|e| explain("dump", &config, e))?;
            bars.finish();
            eprintln!("dumped {records} records");
            Ok(())
        }
        Command::Load {
            file,
            app_label,
            migrate,
        } => {
            let config = config(&cli).await?;
            announce("load", &config);
            let mut conn = connect_one(&config).await?;
            ensure_schema(&config, &mut conn, *migrate).await?;
            let bars = progress::Bars::new();
            let mut report = |table: Table, rows: u64| bars.update(table.name(), rows, rows);
            let records = if fixture::is_fixture(file)? {
                fixture::load(&mut conn, file, app_label, &mut report).await
            } else {
                dump::load(&mut conn, file, &mut report).await
            }
            .map_err(|e| explain("load", &config, e))?;
            bars.finish();
            writeln!(out, "loaded {records} records")?;
            Ok(())
        }
        Command::Adopt {
            app_label,
            apply,
            default_extra_columns,
            json,
        } => {
            let config = config(&cli).await?;
            if *apply {
                announce("adopt --apply", &config);
            }
            let mut conn = connect_one(&config).await?;
            let report = if *apply {
                let mut step = |step: &adopt::Step| eprintln!("{} [{}]", step.name, step.lock);
                let options = adopt::Options::new().default_extra_columns(*default_extra_columns);
                adopt::apply_with(&mut conn, app_label, &options, &mut step)
                    .await
                    .map_err(|e| explain("adopt --apply", &config, e))?
            } else {
                adopt::inspect(&mut conn, app_label)
                    .await
                    .map_err(|e| explain("adopt", &config, e))?
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
            let config = config_or_local(cli).await?;
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
            if cli.database_url.is_some() {
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

async fn print_status(
    config: &Config,
    conn: &mut sqlx::PgConnection,
    out: &mut impl Write,
) -> AnyResult {
    let status = schema::status(conn)
        .await
        .map_err(|e| explain("status", config, e))?;
    for m in status {
        let mark = if m.applied { "[X]" } else { "[ ]" };
        writeln!(out, " {mark} {:04}_{}", m.version, m.description)?;
    }
    Ok(())
}
