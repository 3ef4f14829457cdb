//! The zero-setup database: a private PostgreSQL cluster started from the installed binaries.
//!
//! When nothing is configured, the binary, the tests and the benches use a cluster of their own
//! in `<cargo target dir>/ledger-pg` (override with `LEDGER_PG_DIR`), created with `initdb` on
//! first use, started with `pg_ctl`, and reused by every later run until `ledger db stop`.
//!
//! - **Binaries**: `LEDGER_PG_BIN` if set, else `pg_ctl` on `PATH`, else the newest
//!   `/usr/lib/postgresql/<version>/bin`. `initdb` is taken from the same directory.
//! - **Never root**: PostgreSQL refuses to run as root; when this process is root, the server
//!   runs as the unprivileged OS user `LEDGER_PG_USER` (default `postgres`, else `nobody`), which
//!   owns the cluster directory.
//! - **Private**: no TCP listener. The server listens only on a unix socket inside the cluster
//!   directory (mode 0700), so only its owner (and root) can connect; authentication is `trust`
//!   and there is no password to leak.
//! - **Concurrent use**: starting is guarded by a file lock beside the directory, so test
//!   binaries, benches and the CLI started at once share one server.
//! - **Tuned for development**: `fsync = off` and `full_page_writes = off`. A crash of the machine
//!   can lose this cluster's data; never point it at data you care about. A cluster created by
//!   [`Cluster::ensure_durable`] keeps PostgreSQL's defaults (`fsync = on`) instead, for tests that
//!   crash the server on purpose ([`Cluster::restart`] with [`Shutdown::Immediate`]).

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::postgres::PgConnectOptions;

use crate::net::config::{Config, LOCAL_DATABASE, Source};
use crate::{Error, Result};

mod bouncer;
mod server;

use server::{
    Server, absolute, append, check_socket_path, describe, io_error, is_executable,
    make_private_dir,
};

pub use bouncer::Bouncer;

/// The superuser `initdb` creates in the private cluster.
pub const SUPERUSER: &str = "ledger";
/// The port number, which here names only the socket file (`.s.PGSQL.5432`).
pub const PORT: u16 = 5432;
/// Longest unix socket path the kernel accepts (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

impl Config {
    /// [`Config::from_env`], or else the private cluster: started (or found running) in
    /// [`Cluster::default_dir`], with its [`LOCAL_DATABASE`] created if missing. The zero-setup
    /// path of the command line, the tests, the benches and the examples; a service should call
    /// [`Config::resolve`], which never starts a database.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable configuration, [`Error::LocalCluster`] when the private
    /// cluster cannot be started (the message says what to install or set).
    pub async fn resolve_or_local() -> Result<Self> {
        if let Some(config) = Self::from_env()? {
            return Ok(config);
        }
        let cluster = tokio::task::spawn_blocking(Cluster::ensure_default)
            .await
            .map_err(|e| Error::LocalCluster(format!("starting the cluster panicked: {e}")))??;
        cluster.create_database(LOCAL_DATABASE).await?;
        Ok(Self::local(&cluster, LOCAL_DATABASE))
    }

    /// A config for `database` in the private cluster (which needs no password: its socket
    /// directory is private to its owner).
    pub fn local(cluster: &Cluster, database: &str) -> Self {
        Self::new(
            cluster.connect_options(database),
            None,
            Source::LocalCluster(cluster.dir().to_owned()),
        )
    }
}

/// How [`Cluster::restart`] shuts the server down: `pg_ctl stop -m <mode>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Waits for every client to disconnect.
    Smart,
    /// Rolls back open transactions and disconnects the clients (SQLSTATE 57P01 for them).
    Fast,
    /// Kills every server process at once, like a crash: the next start runs crash recovery.
    Immediate,
}

impl Shutdown {
    fn mode(self) -> &'static str {
        match self {
            Shutdown::Smart => "smart",
            Shutdown::Fast => "fast",
            Shutdown::Immediate => "immediate",
        }
    }
}

/// How a cluster is made: read by `initdb`'s first run only (a cluster that exists keeps what it
/// was made with) and by the connect options, which need the port.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// PostgreSQL's durable defaults (`fsync = on`, `full_page_writes = on`) instead of the
    /// development cluster's `off`.
    pub durable: bool,
    /// Also listen on TCP at `127.0.0.1:<port>`. The port then also names the unix socket
    /// (`.s.PGSQL.<port>`); without it, the cluster has no TCP listener and the socket is
    /// `.s.PGSQL.5432`.
    pub tcp_port: Option<u16>,
    /// Lines appended to `postgresql.conf` (for example `ssl = on`).
    pub conf: String,
    /// Lines placed before the defaults of `pg_hba.conf` (for example a `hostssl` rule).
    pub hba: String,
    /// Files written into the data directory before the first start, mode 0600 and owned by the
    /// server's OS user: certificates and keys, named relative to the data directory.
    pub files: Vec<(String, Vec<u8>)>,
}

/// A running private cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    /// The directory the cluster lives in: `LEDGER_PG_DIR`, else `ledger-pg` in cargo's target
    /// directory (recorded at build time).
    pub fn default_dir() -> PathBuf {
        match std::env::var_os("LEDGER_PG_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => Path::new(env!("LEDGER_TARGET_DIR")).join("ledger-pg"),
        }
    }

    /// [`Cluster::ensure`] in [`Cluster::default_dir`].
    ///
    /// # Errors
    /// As [`Cluster::ensure`].
    pub fn ensure_default() -> Result<Self> {
        Self::ensure(&Self::default_dir())
    }

    /// Finds the cluster in `dir` running, or creates and starts it. Blocking; safe to call from
    /// several processes at once.
    ///
    /// # Errors
    /// [`Error::LocalCluster`] when no PostgreSQL binaries are found (the message says what to
    /// install or set), or `initdb` / `pg_ctl` fail (the message quotes their output).
    pub fn ensure(dir: &Path) -> Result<Self> {
        Self::ensure_with(dir, &Settings::default())
    }

    /// [`Cluster::ensure`], but a cluster created here keeps PostgreSQL's durable defaults
    /// (`fsync = on`, `full_page_writes = on`). A cluster that already exists keeps the settings
    /// it was created with.
    ///
    /// # Errors
    /// As [`Cluster::ensure`].
    pub fn ensure_durable(dir: &Path) -> Result<Self> {
        let settings = Settings {
            durable: true,
            ..Settings::default()
        };
        Self::ensure_with(dir, &settings)
    }

    /// [`Cluster::ensure`] with the given [`Settings`] (used when the cluster is created; an
    /// existing cluster must have been made with the same port).
    ///
    /// # Errors
    /// As [`Cluster::ensure`].
    pub fn ensure_with(dir: &Path, settings: &Settings) -> Result<Self> {
        let port = settings.tcp_port.unwrap_or(PORT);
        Self::ensure_made(dir, port, |cluster, server| cluster.init(server, settings))
    }

    /// Under a file lock beside the directory: the cluster in `dir`, made by `make` unless it
    /// has a data directory, started unless it runs.
    fn ensure_made(
        dir: &Path,
        port: u16,
        make: impl FnOnce(&Self, &Server) -> Result<()>,
    ) -> Result<Self> {
        let server = Server::find()?;
        let cluster = Self {
            dir: server.usable_dir(&absolute(dir)?, port)?,
            port,
        };
        check_socket_path(&cluster.dir, port)?;
        let lock_path = cluster.dir.with_extension("lock");
        let lock = File::create(&lock_path).map_err(|e| io_error("creating", &lock_path, &e))?;
        lock.lock()
            .map_err(|e| io_error("locking", &lock_path, &e))?;
        if !cluster.data_dir().join("PG_VERSION").exists() {
            make(&cluster, &server)?;
        }
        if !cluster.is_running(&server)? {
            cluster.start(&server)?;
        }
        drop(lock);
        Ok(cluster)
    }

    /// A hot standby of `primary` in `dir`, streaming from it, started: made on first use with
    /// `pg_basebackup -R` (which writes `standby.signal` and `primary_conninfo`) over the
    /// primary's unix socket, then reused. It listens on its own socket only (no TCP), with
    /// `hot_standby_feedback = on` so that replay does not cancel its readers' queries. Blocking.
    ///
    /// The primary needs nothing beyond what [`Cluster::ensure`] makes: `wal_level = replica`
    /// is PostgreSQL's default, and `initdb -A trust` allows local replication connections.
    ///
    /// # Errors
    /// [`Error::LocalCluster`] when `pg_basebackup` or `pg_ctl` fail.
    pub fn ensure_standby(dir: &Path, primary: &Cluster) -> Result<Self> {
        Self::ensure_made(dir, PORT, |standby, server| {
            standby.base_backup(server, primary)
        })
    }

    fn base_backup(&self, server: &Server, primary: &Cluster) -> Result<()> {
        make_private_dir(&self.dir, server)?;
        let data = self.data_dir();
        server.run("pg_basebackup", |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-h")
                .arg(&primary.dir)
                .arg("-p")
                .arg(primary.port.to_string())
                .args(["-U", SUPERUSER, "-R", "-X", "stream", "-c", "fast"])
        })?;
        // The copied postgresql.conf names the primary's socket and port: the last line wins.
        let lines = format!(
            "\n# ledger: a hot standby of {}\n\
             listen_addresses = ''\n\
             unix_socket_directories = '{}'\n\
             port = {}\n\
             hot_standby = on\n\
             hot_standby_feedback = on\n",
            primary.dir.display(),
            self.dir.display().to_string().replace('\'', "''"),
            self.port,
        );
        append(&data.join("postgresql.conf"), &lines)
    }

    /// Shuts the server down with `mode` and starts it again, waiting for it to accept
    /// connections (after crash recovery, for [`Shutdown::Immediate`]). Blocking.
    ///
    /// # Errors
    /// [`Error::LocalCluster`] when `pg_ctl stop` or `pg_ctl start` fails.
    pub fn restart(&self, mode: Shutdown) -> Result<()> {
        let server = Server::find()?;
        let data = self.data_dir();
        server.run("pg_ctl", |c| {
            c.arg("stop")
                .arg("-D")
                .arg(&data)
                .args(["-m", mode.mode(), "-w"])
        })?;
        self.start(&server)
    }

    /// Appends `lines` to `postgresql.conf` and reloads the server (`pg_ctl reload`): the
    /// settings that a reload applies take effect at once. Blocking.
    ///
    /// # Errors
    /// [`Error::LocalCluster`] when the file cannot be written or `pg_ctl` fails.
    pub fn configure(&self, lines: &str) -> Result<()> {
        let server = Server::find()?;
        let data = self.data_dir();
        append(&data.join("postgresql.conf"), &format!("\n{lines}\n"))?;
        server.run("pg_ctl", |c| c.arg("reload").arg("-D").arg(&data))
    }

    /// Promotes a standby to primary (`pg_ctl promote`), waiting until it takes writes. Blocking.
    ///
    /// # Errors
    /// [`Error::LocalCluster`] when `pg_ctl promote` fails (the server is not a standby).
    pub fn promote(&self) -> Result<()> {
        let server = Server::find()?;
        let data = self.data_dir();
        server.run("pg_ctl", |c| {
            c.arg("promote")
                .arg("-D")
                .arg(&data)
                .args(["-w", "-t", "60"])
        })
    }

    /// Kills the server's postmaster with `SIGKILL`, as a crash would (its backends exit when
    /// they notice, without a shutdown checkpoint); nothing is restarted. Blocking.
    ///
    /// # Errors
    /// [`Error::LocalCluster`] when the server does not run or `kill` fails.
    pub fn kill(&self) -> Result<()> {
        let pid_file = self.data_dir().join("postmaster.pid");
        let pids = std::fs::read_to_string(&pid_file)
            .map_err(|e| Error::LocalCluster(format!("{}: {e}", pid_file.display())))?;
        let pid = pids.lines().next().unwrap_or_default().trim().to_owned();
        let status = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .map_err(|e| Error::LocalCluster(format!("kill: {e}")))?;
        if !status.success() {
            return Err(Error::LocalCluster(format!("kill -KILL {pid} failed")));
        }
        Ok(())
    }

    /// Stops the cluster in `dir` if it runs. Returns whether it was running.
    ///
    /// # Errors
    /// [`Error::LocalCluster`] when `pg_ctl stop` fails.
    pub fn stop(dir: &Path) -> Result<bool> {
        let server = Server::find()?;
        let cluster = Self {
            dir: server.usable_dir(&absolute(dir)?, PORT)?,
            port: PORT,
        };
        if !cluster.data_dir().join("PG_VERSION").exists() {
            return Ok(false);
        }
        if !cluster.is_running(&server)? {
            return Ok(false);
        }
        let data = cluster.data_dir();
        server.run("pg_ctl", |c| {
            c.arg("stop")
                .arg("-D")
                .arg(&data)
                .args(["-m", "fast", "-w"])
        })?;
        Ok(true)
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The port: the TCP port when [`Settings::tcp_port`] was given, and the number in the unix
    /// socket's name.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection options for `database` over the cluster's unix socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.dir)
            .port(self.port)
            .username(SUPERUSER)
            .database(database)
    }

    /// A password-less URL for `database` (`postgres://ledger@<socket dir>:5432/<database>`).
    pub fn url(&self, database: &str) -> String {
        Config::local(self, database).url()
    }

    /// Creates `database` in this cluster unless it exists (see [`Config::create_database`]).
    ///
    /// # Errors
    /// [`Error::Database`] when the server refuses.
    pub async fn create_database(&self, database: &str) -> Result<()> {
        Config::local(self, "postgres")
            .create_database(database)
            .await
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self, server: &Server, settings: &Settings) -> Result<()> {
        make_private_dir(&self.dir, server)?;
        let data = self.data_dir();
        server.run("initdb", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8"])
                .args(["--locale=C.UTF-8", "-N"])
        })?;
        let durability = if settings.durable {
            "fsync = on\nfull_page_writes = on\n"
        } else {
            "fsync = off\nfull_page_writes = off\n"
        };
        let listen = if settings.tcp_port.is_some() {
            "127.0.0.1"
        } else {
            ""
        };
        let lines = format!(
            "\n# ledger: a private development cluster (see ledger::local)\n\
             listen_addresses = '{listen}'\n\
             unix_socket_directories = '{}'\n\
             port = {}\n\
             max_connections = 200\n\
             {durability}{}\n",
            self.dir.display().to_string().replace('\'', "''"),
            self.port,
            settings.conf,
        );
        append(&data.join("postgresql.conf"), &lines)?;
        if !settings.hba.is_empty() {
            let hba = data.join("pg_hba.conf");
            let defaults = fs::read_to_string(&hba).map_err(|e| io_error("reading", &hba, &e))?;
            fs::write(&hba, format!("{}\n{defaults}", settings.hba))
                .map_err(|e| io_error("writing", &hba, &e))?;
        }
        for (name, contents) in &settings.files {
            let path = data.join(name);
            fs::write(&path, contents).map_err(|e| io_error("writing", &path, &e))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .map_err(|e| io_error("changing the mode of", &path, &e))?;
            if let Some(owner) = &server.owner {
                std::os::unix::fs::chown(&path, Some(owner.uid), Some(owner.gid))
                    .map_err(|e| io_error("changing the owner of", &path, &e))?;
            }
        }
        Ok(())
    }

    fn is_running(&self, server: &Server) -> Result<bool> {
        let data = self.data_dir();
        let output = server.output("pg_ctl", |c| c.arg("status").arg("-D").arg(&data))?;
        // pg_ctl status: 0 running, 3 not running, 4 no accessible data directory.
        match output.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(Error::LocalCluster(format!(
                "pg_ctl status failed: {}",
                describe(&output)
            ))),
        }
    }

    fn start(&self, server: &Server) -> Result<()> {
        let data = self.data_dir();
        let log = self.dir.join("server.log");
        server.run("pg_ctl", |c| {
            c.arg("start")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60"])
        })?;
        tracing::info!(dir = %self.dir.display(), "started the private postgresql cluster");
        Ok(())
    }
}
