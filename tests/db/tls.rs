//! TLS against a real server: a private cluster of the test's own, listening on 127.0.0.1 with
//! `ssl = on`, a certificate for `localhost` signed by a CA the test makes, and a `pg_hba.conf`
//! that refuses plaintext TCP.

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
    assert!(
        chain(&err).contains("invalid peer certificate: UnknownIssuer"),
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
        chain(&err).contains("certificate not valid for name \"127.0.0.1\""),
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
