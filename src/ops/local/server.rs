//! The PostgreSQL server binaries the private cluster runs, the unprivileged OS user that runs
//! them, and the file-system chores of the cluster directory.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::MAX_SOCKET_PATH;
use crate::{Error, Result};

/// The installed PostgreSQL binaries and the OS user to run them as.
#[derive(Debug)]
pub(super) struct Server {
    pub(super) bin: PathBuf,
    pub(super) owner: Option<Owner>,
}

#[derive(Debug)]
pub(super) struct Owner {
    pub(super) uid: u32,
    pub(super) gid: u32,
}

impl Server {
    pub(super) fn find() -> Result<Self> {
        let bin = find_bin_dir(
            std::env::var_os("LEDGER_PG_BIN").map(PathBuf::from),
            std::env::var_os("PATH"),
            Path::new("/usr/lib/postgresql"),
        )
        .ok_or_else(|| {
            Error::LocalCluster(
                "no database configured and no PostgreSQL binaries found: set DATABASE_URL (or \
                 DB_NAME and friends), or install PostgreSQL (`apt-get install postgresql`)"
                    .to_owned(),
            )
        })?;
        let owner = if nix::unistd::Uid::effective().is_root() {
            Some(unprivileged_owner()?)
        } else {
            None
        };
        Ok(Self { bin, owner })
    }

    /// `dir`, or a directory named after its hash under the system's temporary directory when
    /// `dir` cannot serve: its socket path would be too long for a unix socket (a deep checkout),
    /// or the server's OS user cannot enter one of its parents (a checkout under `/root`).
    pub(super) fn usable_dir(&self, dir: &Path, port: u16) -> Result<PathBuf> {
        let parent = dir.parent().unwrap_or(Path::new("/"));
        fs::create_dir_all(parent).map_err(|e| io_error("creating", parent, &e))?;
        let reachable = self
            .owner
            .as_ref()
            .is_none_or(|owner| reachable_by(dir, owner.uid, owner.gid));
        if reachable && check_socket_path(dir, port).is_ok() {
            return Ok(dir.to_owned());
        }
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(dir, &mut hasher);
        let fallback = std::env::temp_dir().join(format!(
            "ledger-pg-{:016x}",
            std::hash::Hasher::finish(&hasher)
        ));
        tracing::info!(
            wanted = %dir.display(),
            using = %fallback.display(),
            "the cluster directory cannot hold the server's socket or is out of its reach"
        );
        Ok(fallback)
    }

    pub(super) fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.stdin(Stdio::null());
        if let Some(owner) = &self.owner {
            // std drops supplementary groups when a uid is set.
            command.uid(owner.uid).gid(owner.gid);
            // The server user may not be able to enter the caller's working directory.
            command.current_dir("/");
        }
        command
    }

    pub(super) fn output(
        &self,
        program: &str,
        args: impl Fn(&mut Command) -> &mut Command,
    ) -> Result<Output> {
        let mut command = self.command(program);
        args(&mut command)
            .output()
            .map_err(|e| Error::LocalCluster(format!("running {program}: {e}")))
    }

    pub(super) fn run(
        &self,
        program: &str,
        args: impl Fn(&mut Command) -> &mut Command,
    ) -> Result<()> {
        let output = self.output(program, args)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::LocalCluster(format!(
                "{program} failed: {}",
                describe(&output)
            )))
        }
    }
}

pub(super) fn unprivileged_owner() -> Result<Owner> {
    let wanted = std::env::var("LEDGER_PG_USER").ok();
    let names = match &wanted {
        Some(name) => vec![name.as_str()],
        None => vec!["postgres", "nobody"],
    };
    for name in names {
        if let Ok(Some(user)) = nix::unistd::User::from_name(name) {
            if user.uid.is_root() {
                continue;
            }
            return Ok(Owner {
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            });
        }
    }
    Err(Error::LocalCluster(
        "running as root, and PostgreSQL refuses to: no unprivileged user to run it as \
         (create the user `postgres`, or set LEDGER_PG_USER)"
            .to_owned(),
    ))
}

/// `explicit`, else the directory of `pg_ctl` on `path` (symlinks resolved, so `initdb` is found
/// beside it), else the newest `<versions>/<N>/bin`.
pub(super) fn find_bin_dir(
    explicit: Option<PathBuf>,
    path: Option<std::ffi::OsString>,
    versions: &Path,
) -> Option<PathBuf> {
    let has_tools =
        |dir: &Path| is_executable(&dir.join("pg_ctl")) && is_executable(&dir.join("initdb"));
    if let Some(dir) = explicit {
        return has_tools(&dir).then_some(dir);
    }
    let on_path = path.iter().flat_map(std::env::split_paths).find_map(|dir| {
        let pg_ctl = fs::canonicalize(dir.join("pg_ctl")).ok()?;
        let bin = pg_ctl.parent()?.to_owned();
        has_tools(&bin).then_some(bin)
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut installed: Vec<(u32, PathBuf)> = fs::read_dir(versions)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    installed.sort();
    installed.pop().map(|(_, bin)| bin)
}

pub(super) fn check_socket_path(dir: &Path, port: u16) -> Result<()> {
    let socket = dir.join(format!(".s.PGSQL.{port}"));
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(Error::LocalCluster(format!(
            "the socket path {} is too long for unix sockets; set LEDGER_PG_DIR to a shorter \
             directory",
            socket.display()
        )));
    }
    Ok(())
}

pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(super) fn absolute(dir: &Path) -> Result<PathBuf> {
    std::path::absolute(dir).map_err(|e| io_error("resolving", dir, &e))
}

/// Makes `dir` afresh (removing what a failed run left), mode 0700, owned by the server's user.
pub(super) fn make_private_dir(dir: &Path, server: &Server) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| io_error("removing", dir, &e))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error("creating", dir, &e))?;
    if let Some(owner) = &server.owner {
        std::os::unix::fs::chown(dir, Some(owner.uid), Some(owner.gid))
            .map_err(|e| io_error("changing the owner of", dir, &e))?;
    }
    Ok(())
}

pub(super) fn append(path: &Path, text: &str) -> Result<()> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| io_error("writing", path, &e))
}

pub(super) fn io_error(doing: &str, path: &Path, err: &std::io::Error) -> Error {
    Error::LocalCluster(format!("{doing} {}: {err}", path.display()))
}

pub(super) fn describe(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let text = if text.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout)
    } else {
        text
    };
    let text = text.trim();
    if text.is_empty() {
        output.status.to_string()
    } else {
        text.to_owned()
    }
}

/// Whether `uid` may enter every ancestor of `dir`.
pub(super) fn reachable_by(dir: &Path, uid: u32, gid: u32) -> bool {
    dir.ancestors().skip(1).all(|a| {
        fs::metadata(a).is_ok_and(|m| {
            let mode = m.mode();
            (m.uid() == uid && mode & 0o100 != 0)
                || (m.gid() == gid && mode & 0o010 != 0)
                || mode & 0o001 != 0
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Cluster, PORT};
    use super::*;

    fn fake_bin(dir: &Path) {
        fs::create_dir_all(dir).unwrap();
        for tool in ["pg_ctl", "initdb"] {
            let path = dir.join(tool);
            fs::write(&path, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ledger-local-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn finds_the_newest_installed_version_when_path_has_none() {
        let root = scratch("versions");
        fake_bin(&root.join("13/bin"));
        fake_bin(&root.join("16/bin"));
        fs::create_dir_all(root.join("17/bin")).unwrap(); // no binaries: skipped
        let found = find_bin_dir(None, Some("/nonexistent".into()), &root);
        assert_eq!(found, Some(root.join("16/bin")));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn path_wins_over_installed_versions_and_explicit_wins_over_both() {
        let root = scratch("path");
        fake_bin(&root.join("versions/15/bin"));
        fake_bin(&root.join("onpath"));
        fake_bin(&root.join("explicit"));
        let path = Some(root.join("onpath").into_os_string());
        let versions = root.join("versions");
        assert_eq!(
            find_bin_dir(None, path.clone(), &versions),
            Some(fs::canonicalize(root.join("onpath")).unwrap())
        );
        assert_eq!(
            find_bin_dir(Some(root.join("explicit")), path, &versions),
            Some(root.join("explicit"))
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn no_binaries_anywhere_is_none() {
        let root = scratch("none");
        assert_eq!(find_bin_dir(None, Some("/nonexistent".into()), &root), None);
        assert_eq!(find_bin_dir(Some(root.clone()), None, &root), None);
    }

    #[test]
    fn too_long_a_socket_path_is_a_clear_error() {
        let dir = std::env::temp_dir().join("x".repeat(120));
        let err = check_socket_path(&dir, PORT).unwrap_err();
        assert!(check_socket_path(&std::env::temp_dir().join("ledger-pg"), PORT).is_ok());
        assert!(
            matches!(&err, Error::LocalCluster(msg) if msg.contains("LEDGER_PG_DIR")),
            "{err}"
        );
    }

    #[test]
    fn default_dir_is_under_the_target_directory() {
        if std::env::var_os("LEDGER_PG_DIR").is_none() {
            assert!(Cluster::default_dir().ends_with("ledger-pg"));
        }
    }

    #[test]
    fn reachability_follows_the_execute_bits_of_every_parent() {
        let root = scratch("reach");
        let locked = root.join("locked");
        fs::create_dir_all(&locked).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
        let me = fs::metadata(&root).unwrap();
        let stranger = me.uid() + 4242;
        assert!(reachable_by(&root.join("cluster"), stranger, stranger));
        assert!(!reachable_by(&locked.join("cluster"), stranger, stranger));
        assert!(reachable_by(&locked.join("cluster"), me.uid(), me.gid()));
        fs::remove_dir_all(root).unwrap();
    }
}
