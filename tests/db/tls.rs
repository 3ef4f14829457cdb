//! TLS against a real server: a private cluster of the test's own, listening on 127.0.0.1 with
//! `ssl = on`, a certificate for `localhost` signed by a CA the test makes, and a `pg_hba.conf`
//! that refuses plaintext TCP; and a server whose certificate is X.509 v1, reached in every
//! `sslmode` beside psql.

use std::path::PathBuf;

use ledger::local::{Cluster, Settings};
use ledger::{Config, Error};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// A CA, and a server certificate for `localhost` that it signed.
struct Pki {
    ca_pem: String,
    server_pem: String,
    server_key_pem: String,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn pki() -> Pki {
    let ca = new_ca("ledger test CA");
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_pem: server.pem(),
        server_key_pem: key.serialize_pem(),
    }
}

/// Stops the test's cluster however the test ends.
struct Stop(PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = Cluster::stop(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Outside the ephemeral range (see `support::server_port`).
fn free_port() -> u16 {
    crate::support::server_port()
}

fn tcp(host: &str, port: u16, mode: PgSslMode) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .host(host)
        .port(port)
        .username(ledger::local::SUPERUSER)
        .database("postgres")
        .ssl_mode(mode)
}

/// The error and its sources, on one line.
fn chain(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn connect(options: &PgConnectOptions) -> ledger::Result<bool> {
    let mut conn = sqlx::PgConnection::connect_with(options).await?;
    let ssl = sqlx::query_scalar!(
        r#"select ssl as "ssl!" from pg_stat_ssl where pid = pg_backend_pid()"#
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(ssl)
}

#[tokio::test]
async fn tls_verify_full_connects_with_the_right_ca_and_host_and_refuses_otherwise() {
    let pki = pki();
    let port = free_port();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tls-{}", std::process::id()));
    let _stop = Stop(dir.clone());
    let settings = Settings {
        tcp_port: Some(port),
        conf: "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'".to_owned(),
        hba: "hostssl all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject".to_owned(),
        files: vec![
            ("server.crt".to_owned(), pki.server_pem.clone().into_bytes()),
            (
                "server.key".to_owned(),
                pki.server_key_pem.clone().into_bytes(),
            ),
        ],
        ..Settings::default()
    };
    tokio::task::spawn_blocking(move || Cluster::ensure_with(&dir, &settings))
        .await
        .unwrap()
        .unwrap();
    let ca = pki.ca_pem.as_bytes();

    // The right CA and the host the certificate names: encrypted.
    let good = tcp("localhost", port, PgSslMode::VerifyFull).ssl_root_cert_from_pem(ca.to_vec());
    assert!(connect(&good).await.unwrap(), "pg_stat_ssl says encrypted");

    // The same through a URL, as a service's DATABASE_URL would say it.
    let ca_file = std::env::temp_dir().join(format!("ledger-tls-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca).unwrap();
    let url = format!(
        "postgres://{}@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={}",
        ledger::local::SUPERUSER,
        ca_file.display()
    );
    let pool = Config::from_url(&url).unwrap().connect().await.unwrap();
    let ssl = sqlx::query_scalar!(
        r#"select ssl as "ssl!" from pg_stat_ssl where pid = pg_backend_pid()"#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(ssl);
    pool.close().await;
    let _ = std::fs::remove_file(&ca_file);

    // Another CA: refused, and the error says why.
    let stranger = new_ca("a stranger's CA").pem();
    let wrong_ca = tcp("localhost", port, PgSslMode::VerifyFull)
        .ssl_root_cert_from_pem(stranger.clone().into_bytes());
    let err = connect(&wrong_ca).await.unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    assert!(!err.is_retryable(), "{err:?}");
    // OpenSSL's verdict (the `tls` feature), or rustls' (`tls-rustls`).
    assert!(
        chain(&err).contains("unable to get local issuer certificate")
            || chain(&err).contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        chain(&err)
    );
    let wrong_ca_only =
        tcp("localhost", port, PgSslMode::VerifyCa).ssl_root_cert_from_pem(stranger.into_bytes());
    assert!(matches!(connect(&wrong_ca_only).await, Err(Error::Tls(_))));

    // The right CA, but a host name the certificate does not carry: verify-full refuses,
    // verify-ca (which checks only the CA) accepts.
    let wrong_host =
        tcp("127.0.0.1", port, PgSslMode::VerifyFull).ssl_root_cert_from_pem(ca.to_vec());
    let err = connect(&wrong_host).await.unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    assert!(
        chain(&err).contains("IP address mismatch")
            || chain(&err).contains("certificate not valid for name \"127.0.0.1\""),
        "{}",
        chain(&err)
    );
    let ca_only = tcp("127.0.0.1", port, PgSslMode::VerifyCa).ssl_root_cert_from_pem(ca.to_vec());
    assert!(connect(&ca_only).await.unwrap());

    // require encrypts without checking; plaintext is refused by the server's rules.
    assert!(
        connect(&tcp("127.0.0.1", port, PgSslMode::Require))
            .await
            .unwrap()
    );
    let plaintext = connect(&tcp("localhost", port, PgSslMode::Disable))
        .await
        .unwrap_err();
    assert!(
        chain(&plaintext).contains("pg_hba.conf rejects"),
        "{}",
        chain(&plaintext)
    );
}

/// Runs `openssl` with `args` in `dir`, failing the test with its output if it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether psql connects to `localhost:port` in `mode` (`sslrootcert` given for the verifying
/// modes) and, if so, whether `pg_stat_ssl` says the session is encrypted.
fn psql_ssl(port: u16, mode: &str, root: &std::path::Path) -> Result<bool, String> {
    let mut command = std::process::Command::new("psql");
    command
        .args([
            "-XAtc",
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
        ])
        .arg(format!(
            "host=localhost port={port} user={} dbname=postgres sslmode={mode}",
            ledger::local::SUPERUSER
        ))
        .env_remove("PGSSLROOTCERT")
        .env("HOME", root.parent().unwrap());
    if mode.starts_with("verify") {
        command.env("PGSSLROOTCERT", root);
    }
    let out = command.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "t")
}

/// A server whose certificate is X.509 **v1** (as `openssl x509 -req -signkey` makes one, and as
/// Citus makes one for a server that has none): ledger connects in every `sslmode` exactly when
/// psql does, encrypted exactly when psql's session is, and so verifies the certificate only in
/// `verify-ca` and `verify-full`, as libpq does.
#[tokio::test]
async fn a_server_with_an_x509_v1_certificate_is_reached_in_every_sslmode_as_psql_reaches_it() {
    let port = free_port();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tls-v1-{}", std::process::id()));
    let keys = dir.with_extension("keys");
    let _ = std::fs::remove_dir_all(&keys);
    std::fs::create_dir_all(&keys).unwrap();
    let _stop = Stop(dir.clone());
    openssl(
        &keys,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        &keys,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-signkey",
            "server.key",
            "-days",
            "2",
            "-out",
            "server.crt",
        ],
    );
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", "server.crt"])
        .current_dir(&keys)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Version: 1 (0x0)"), "{text}");
    let read = |name: &str| std::fs::read(keys.join(name)).unwrap();
    let settings = Settings {
        tcp_port: Some(port),
        conf: "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'".to_owned(),
        // Plaintext and TLS both allowed, so that each mode's own choice shows.
        hba: "host all all 127.0.0.1/32 trust".to_owned(),
        files: vec![
            ("server.crt".to_owned(), read("server.crt")),
            ("server.key".to_owned(), read("server.key")),
        ],
        ..Settings::default()
    };
    tokio::task::spawn_blocking(move || Cluster::ensure_with(&dir, &settings))
        .await
        .unwrap()
        .unwrap();
    let root = keys.join("server.crt");

    for (mode, encrypted) in [
        ("disable", false),
        // libpq's `allow` tries plaintext first, which this server takes.
        ("allow", false),
        ("prefer", true),
        ("require", true),
        ("verify-ca", true),
        ("verify-full", true),
    ] {
        let psql = psql_ssl(port, mode, &root);
        let mut url = format!(
            "postgres://{}@localhost:{port}/postgres?sslmode={mode}",
            ledger::local::SUPERUSER
        );
        if mode.starts_with("verify") {
            url.push_str(&format!("&sslrootcert={}", root.display()));
        }
        let config = Config::from_url(&url).unwrap();
        let ours = match config.connect_one().await {
            Ok(mut conn) => Ok(sqlx::query_scalar!(
                r#"select ssl as "ssl!" from pg_stat_ssl where pid = pg_backend_pid()"#
            )
            .fetch_one(&mut conn)
            .await
            .unwrap()),
            Err(err) => Err(chain(&err)),
        };
        assert_eq!(psql, Ok(encrypted), "psql in {mode}");
        assert_eq!(ours, Ok(encrypted), "ledger in {mode}");
    }

    // A stranger's root: both refuse to verify, and ledger's error is a TLS error.
    let stranger = keys.join("stranger.pem");
    std::fs::write(&stranger, new_ca("a stranger's CA").pem()).unwrap();
    for mode in ["verify-ca", "verify-full"] {
        assert!(psql_ssl(port, mode, &stranger).is_err(), "psql in {mode}");
        let url = format!(
            "postgres://{}@localhost:{port}/postgres?sslmode={mode}&sslrootcert={}",
            ledger::local::SUPERUSER,
            stranger.display()
        );
        let err = Config::from_url(&url)
            .unwrap()
            .connect_one()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Tls(_)), "{mode}: {err:?}");
    }
    let _ = std::fs::remove_dir_all(&keys);
}
