//! PgBouncer in front of a private [`Cluster`] (see [`Bouncer`]).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sqlx::postgres::PgConnectOptions;

use super::{
    Cluster, SUPERUSER, Server, absolute, check_socket_path, io_error, is_executable,
    make_private_dir,
};
use crate::net::config::{Config, Source};
use crate::{Error, Result};

/// PgBouncer in front of a [`Cluster`], for tests and local trials: started from the installed
/// `pgbouncer` (`LEDGER_PGBOUNCER`, else on `PATH`, else `/usr/sbin/pgbouncer`), as the
/// cluster's OS user, listening only on a unix socket in its own directory, in **transaction**
/// pooling mode. Stopped when dropped.
///
/// The configuration it writes is the one `ledger` documents for a transaction pooler
/// (see docs/replicas-and-pgbouncer.md): `pool_mode = transaction`, `auth_type = trust` (the
/// socket directory is private, as the cluster's is), `server_reset_query = DISCARD ALL` with
/// `server_reset_query_always = 1`, and `ignore_startup_parameters = extra_float_digits` (which
/// sqlx sends and PgBouncer 1.18 does not track). [`Bouncer::start`] appends the caller's lines
/// after these, and PgBouncer keeps the last value of a setting.
#[derive(Debug)]
pub struct Bouncer {
    dir: PathBuf,
    port: u16,
    child: std::process::Child,
}

impl Bouncer {
    /// The port, which names the socket file (`.s.PGSQL.6432`).
    pub const PORT: u16 = 6432;

    /// Whether a `pgbouncer` is installed where [`Bouncer::start`] looks.
    pub fn is_installed() -> bool {
        find_pgbouncer().is_some()
    }

    /// Writes a configuration into `dir` (made afresh) and starts PgBouncer in front of
    /// `cluster`, with `conf` appended to its `[pgbouncer]` section, waiting until it listens.
    /// Blocking.
    ///
    /// # Errors
    /// [`Error::LocalCluster`] when no `pgbouncer` is installed (the message says what to
    /// install or set), or it exits or does not listen within 10 seconds (the message quotes its
    /// log).
    pub fn start(dir: &Path, cluster: &Cluster, conf: &str) -> Result<Self> {
        let server = Server::find()?;
        let program = find_pgbouncer().ok_or_else(|| {
            Error::LocalCluster(
                "no pgbouncer found: install it (`apt-get install pgbouncer`) or set \
                 LEDGER_PGBOUNCER to its path"
                    .to_owned(),
            )
        })?;
        let dir = &absolute(dir)?;
        let port = Self::PORT;
        check_socket_path(dir, port)?;
        make_private_dir(dir, &server)?;
        let quote = |path: &Path| path.display().to_string();
        let ini = format!(
            "[databases]\n\
             * = host={cluster_dir} port={cluster_port} user={SUPERUSER}\n\
             [pgbouncer]\n\
             listen_port = {port}\n\
             unix_socket_dir = {dir}\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             admin_users = {SUPERUSER}\n\
             pool_mode = transaction\n\
             server_reset_query = DISCARD ALL\n\
             server_reset_query_always = 1\n\
             ignore_startup_parameters = extra_float_digits\n\
             max_client_conn = 500\n\
             default_pool_size = 20\n\
             logfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n\
             {conf}\n",
            cluster_dir = quote(&cluster.dir),
            cluster_port = cluster.port,
            dir = quote(dir),
        );
        let files = [
            ("pgbouncer.ini", ini),
            ("userlist.txt", format!("\"{SUPERUSER}\" \"\"\n")),
        ];
        for (name, contents) in files {
            let path = dir.join(name);
            fs::write(&path, contents).map_err(|e| io_error("writing", &path, &e))?;
            if let Some(owner) = &server.owner {
                std::os::unix::fs::chown(&path, Some(owner.uid), Some(owner.gid))
                    .map_err(|e| io_error("changing the owner of", &path, &e))?;
            }
        }
        let mut command = Command::new(&program);
        command
            .arg(dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(owner) = &server.owner {
            command.uid(owner.uid).gid(owner.gid).current_dir("/");
        }
        let child = command
            .spawn()
            .map_err(|e| Error::LocalCluster(format!("running {}: {e}", program.display())))?;
        // Owned from here: dropped (killed) if it does not come up.
        let mut bouncer = Self {
            dir: dir.clone(),
            port,
            child,
        };
        let socket = dir.join(format!(".s.PGSQL.{port}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() {
            let exited = bouncer
                .child
                .try_wait()
                .map_err(|e| Error::LocalCluster(format!("waiting for pgbouncer: {e}")))?;
            if exited.is_some() || std::time::Instant::now() > deadline {
                let log = fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default();
                return Err(Error::LocalCluster(format!(
                    "pgbouncer did not start listening: {}",
                    log.trim()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(bouncer)
    }

    /// Connection options for `database` through PgBouncer, as the cluster's superuser. Add the
    /// transaction-pooler profile yourself (see docs/replicas-and-pgbouncer.md): these are plain options.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.dir)
            .port(self.port)
            .username(SUPERUSER)
            .database(database)
    }

    /// A [`Config`] for `database` through PgBouncer, with the transaction-pooler profile
    /// ([`Config::transaction_pooler`]).
    pub fn config(&self, database: &str) -> Config {
        Config::new(
            self.connect_options(database),
            None,
            Source::LocalCluster(self.dir.clone()),
        )
        .transaction_pooler()
    }

    /// The directory holding its configuration, log and socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_pgbouncer() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("LEDGER_PGBOUNCER") {
        let explicit = PathBuf::from(explicit);
        return is_executable(&explicit).then_some(explicit);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("pgbouncer"))
        .find(|path| is_executable(path))
}
