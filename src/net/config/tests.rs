//! The unit tests of `config`.

use super::connect::quote_ident;
use super::env::{split_urls, url_password};
use super::*;
use crate::Error;
use crate::net::hosts::LoadBalanceHosts;

fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |key| {
        vars.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn a_url_of_another_database_is_refused_by_its_scheme() {
    for (url, scheme) in [
        ("mysql://root@localhost/db", "mysql://"),
        ("localhost:5432/db", "none"),
    ] {
        let err = Config::from_url(url).unwrap_err().to_string();
        assert!(err.contains("not a PostgreSQL URL"), "{err}");
        assert!(err.contains(scheme), "{err}");
    }
    assert!(Config::from_url("postgresql://app@db.example/prod").is_ok());
}

#[test]
fn the_url_is_one_libpq_reads_without_password_or_sqlx_parameters() {
    let config = Config::from_url("postgres://app:s3cret@db1:5433/bank?sslmode=require")
        .unwrap()
        .transaction_pooler();
    assert_eq!(config.url(), "postgres://app@db1:5433/bank?sslmode=require");
}

#[test]
fn the_target_names_host_port_database_and_user_but_no_password() {
    let config = Config::from_url("postgres://app:s3cret@db.example:6543/prod").unwrap();
    let target = config.target();
    assert_eq!(target, "db.example:6543, database prod, user app");
    assert!(!target.contains("s3cret"));
}

#[test]
fn replica_urls_are_split_sized_and_a_bad_entry_is_named_by_position_not_by_its_text() {
    assert!(
        Config::replicas_from_lookup(lookup(&[]))
            .unwrap()
            .is_empty()
    );
    let vars = [
        (
            "DATABASE_REPLICA_URLS",
            " postgres://a@r1/db ,, postgres://a@r2:6000/db,",
        ),
        ("DB_MAX_CONNECTIONS", "3"),
    ];
    let replicas = Config::replicas_from_lookup(lookup(&vars)).unwrap();
    let targets: Vec<_> = replicas.iter().map(Config::target).collect();
    assert_eq!(
        targets,
        [
            "r1:5432, database db, user a",
            "r2:6000, database db, user a"
        ]
    );
    assert!(replicas.iter().all(|r| r.max_connections == 3));

    let vars = [(
        "DATABASE_REPLICA_URLS",
        "postgres://a@r1/db,mysql://a:s3cret@r2/db",
    )];
    let err = Config::replicas_from_lookup(lookup(&vars))
        .unwrap_err()
        .to_string();
    assert!(err.contains("DATABASE_REPLICA_URLS (entry 2)"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn nothing_configured_is_none() {
    assert!(Config::from_lookup(lookup(&[])).unwrap().is_none());
}

#[test]
fn database_url_wins_over_django_variables() {
    let vars = [
        ("DATABASE_URL", "postgres://app@db.example:6543/prod"),
        ("DB_NAME", "other"),
    ];
    let config = Config::from_lookup(lookup(&vars)).unwrap().unwrap();
    assert_eq!(config.source(), &Source::Url);
    assert_eq!(config.connect_options().get_database(), Some("prod"));
    assert_eq!(config.connect_options().get_port(), 6543);
}

#[test]
fn django_variables_default_host_and_port() {
    let vars = [("DB_NAME", "mydb"), ("DB_USER", "postgres")];
    let config = Config::from_lookup(lookup(&vars)).unwrap().unwrap();
    let o = config.connect_options();
    assert_eq!(config.source(), &Source::DjangoVariables);
    assert_eq!(
        (
            o.get_host(),
            o.get_port(),
            o.get_username(),
            o.get_database()
        ),
        ("localhost", 5432, "postgres", Some("mydb"))
    );
}

#[test]
fn django_host_path_is_a_unix_socket() {
    let vars = [("DB_NAME", "mydb"), ("DB_HOST", "/var/run/postgresql")];
    let config = Config::from_lookup(lookup(&vars)).unwrap().unwrap();
    assert_eq!(
        config.connect_options().get_socket(),
        Some(&PathBuf::from("/var/run/postgresql"))
    );
}

#[test]
fn bad_port_and_pool_size_are_config_errors() {
    let bad_port = [("DB_NAME", "mydb"), ("DB_PORT", "fifty")];
    assert!(matches!(
        Config::from_lookup(lookup(&bad_port)),
        Err(Error::Config(msg)) if msg.contains("DB_PORT")
    ));
    let bad_size = [("DB_NAME", "mydb"), ("DB_MAX_CONNECTIONS", "0")];
    assert!(matches!(
        Config::from_lookup(lookup(&bad_size)),
        Err(Error::Config(msg)) if msg.contains("DB_MAX_CONNECTIONS")
    ));
}

#[test]
fn password_never_appears_in_debug_display_or_url() {
    let from_url = Config::from_url("postgres://ana:hunter2-secret@db:5432/mydb").unwrap();
    let vars = [("DB_NAME", "mydb"), ("DB_PASSWORD", "hunter2-secret")];
    let from_vars = Config::from_lookup(lookup(&vars)).unwrap().unwrap();
    for config in [from_url, from_vars] {
        let shown = [
            format!("{config:?}"),
            format!("{config:#?}"),
            config.to_string(),
            config.url(),
        ];
        for text in shown {
            assert!(!text.contains("hunter2"), "password leaked: {text}");
        }
        assert!(format!("{config:?}").contains("<redacted>"));
    }
}

#[test]
fn password_never_appears_in_url_errors() {
    for url in [
        "postgres://ana:hunter2-secret@db:notaport/mydb",
        "postgres://ana:hunter2-secret@[::1/mydb",
        "not a url hunter2-secret",
    ] {
        let err = Config::from_url(url).unwrap_err();
        let mut text = format!("{err} {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            text.push_str(&s.to_string());
            source = s.source();
        }
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(!text.contains("hunter2"), "password leaked: {text}");
    }
}

#[test]
fn identifiers_are_quoted() {
    assert_eq!(quote_ident("ledger"), "\"ledger\"");
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
}

#[test]
fn url_password_reads_only_the_authority_and_decodes_it() {
    assert_eq!(
        url_password("postgres://a:b%40c@h/db").as_deref(),
        Some("b@c")
    );
    assert_eq!(url_password("postgres://a@h/db"), None);
    assert_eq!(url_password("postgres://h/db?x=a:b@c"), None);
}

#[test]
fn libpq_env_carries_the_password_for_child_tools_only() {
    let config = Config::from_url("postgres://ana:s3cret@db.example:6543/app").unwrap();
    let env = config.libpq_env();
    assert!(env.contains(&("PGHOST", "db.example".to_owned())));
    assert!(env.contains(&("PGPORT", "6543".to_owned())));
    assert!(env.contains(&("PGDATABASE", "app".to_owned())));
    assert!(env.contains(&("PGPASSWORD", "s3cret".to_owned())));
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn a_host_list_reads_back_as_the_url_and_environment_libpq_takes() {
    let config = Config::from_url(
        "postgres://app:s3cret@db-1:5433,db-2,[::1]:7000/bank?sslmode=disable&target_session_attrs=read-write&connect_timeout=3",
    )
    .unwrap();
    let hosts = config.hosts().unwrap();
    assert_eq!(hosts.endpoints().len(), 3);
    assert_eq!(config.connect_options().get_host(), "db-1");
    assert_eq!(config.connect_options().get_port(), 5433);
    let url = config.url();
    assert!(
        url.starts_with("postgres://app@db-1:5433,db-2:5432,[::1]:7000/bank?"),
        "{url}"
    );
    assert!(url.contains("sslmode=disable"), "{url}");
    assert!(url.contains("target_session_attrs=read-write"), "{url}");
    assert!(url.contains("connect_timeout=3"), "{url}");
    assert!(!url.contains("s3cret") && !format!("{config:?}").contains("s3cret"));
    assert_eq!(
        config.target(),
        "db-1:5433,db-2:5432,[::1]:7000 (read-write), database bank, user app"
    );
    let env = config.libpq_env();
    let get = |key: &str| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
    assert_eq!(get("PGHOST"), Some("db-1,db-2,::1"));
    assert_eq!(get("PGPORT"), Some("5433,5432,7000"));
    assert_eq!(get("PGTARGETSESSIONATTRS"), Some("read-write"));
    assert_eq!(get("PGCONNECT_TIMEOUT"), Some("3"));
    // The URL reads back to the same list.
    let again = Config::from_url(&url).unwrap();
    assert_eq!(again.hosts(), config.hosts());
}

#[test]
fn the_seeds_variables_take_host_lists_and_the_session_attributes() {
    let config = Config::from_lookup(lookup(&[
        ("DB_NAME", "bank"),
        ("DB_HOST", "db-1,db-2"),
        ("DB_PORT", "6432"),
        ("DB_TARGET_SESSION_ATTRS", "primary"),
        ("DB_LOAD_BALANCE_HOSTS", "random"),
    ]))
    .unwrap()
    .unwrap();
    let hosts = config.hosts().unwrap();
    assert_eq!(
        hosts.endpoints(),
        [Endpoint::tcp("db-1", 6432), Endpoint::tcp("db-2", 6432)]
    );
    assert_eq!(hosts.target_session_attrs(), TargetSessionAttrs::Primary);
    assert_eq!(hosts.load_balance_hosts(), LoadBalanceHosts::Random);
    let err = Config::from_lookup(lookup(&[
        ("DB_NAME", "bank"),
        ("DB_HOST", "db-1,db-2"),
        ("DB_TARGET_SESSION_ATTRS", "writer"),
    ]))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration: DB_TARGET_SESSION_ATTRS: invalid target_session_attrs value: \"writer\" \
         (any, read-write, read-only, primary, standby or prefer-standby)"
    );
    // One host, nothing to check: no list.
    let plain = Config::from_lookup(lookup(&[("DB_NAME", "bank"), ("DB_HOST", "db-1")]))
        .unwrap()
        .unwrap();
    assert!(plain.hosts().is_none());
}

#[test]
fn replica_urls_split_between_urls_never_inside_a_host_list() {
    assert_eq!(
        split_urls("postgres://a@h1,h2/db, postgresql://b@h3/db,postgres://c@h4:1,h5:2/db"),
        [
            "postgres://a@h1,h2/db",
            " postgresql://b@h3/db",
            "postgres://c@h4:1,h5:2/db"
        ]
    );
}

#[test]
fn a_url_without_a_host_is_refused_with_or_without_a_list() {
    for url in [
        "postgres://app@/bank?target_session_attrs=read-write",
        "postgres://app@:6543/bank?target_session_attrs=read-write",
    ] {
        let err = Config::from_url(url).unwrap_err().to_string();
        assert!(err.contains("host 1 of 1 is empty"), "{url}: {err}");
    }
}

#[test]
fn each_host_is_a_plain_config_of_one_server() {
    let config = Config::from_url("postgres://app@db-1:1,db-2:2/bank?target_session_attrs=primary")
        .unwrap()
        .max_connections(7);
    let each = config.each_host();
    let targets: Vec<String> = each.iter().map(Config::target).collect();
    assert_eq!(
        targets,
        [
            "db-1:1, database bank, user app",
            "db-2:2, database bank, user app"
        ]
    );
    assert!(
        each.iter()
            .all(|c| c.hosts().is_none() && c.pool_size() == 7)
    );
}

/// `.env` is read, not loaded: its settings reach the config (the environment's still win), and
/// the process environment is exactly what it was (no `std::env::set_var` behind the caller's
/// threads). A variable only `.env` names stays out of the environment.
#[test]
fn a_dotenv_file_configures_without_touching_the_process_environment() {
    let dir = std::env::temp_dir().join(format!("ledger-dotenv-{}", std::process::id()));
    let nested = dir.join("service/bin");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(
        dir.join(".env"),
        "LEDGER_TEST_ONLY_IN_DOTENV=1\nDB_NAME=from_dotenv\nDB_USER=dot\nDB_PASSWORD=s3cret\n\
         DB_LOCK_TIMEOUT=3s\nDB_STATEMENT_TIMEOUT=45s\n",
    )
    .unwrap();
    let before: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os().collect();
    let config = Config::from_env_at(Some(&nested)).unwrap().unwrap();
    let after: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os().collect();
    assert_eq!(before, after, "the process environment changed");
    assert!(std::env::var_os("LEDGER_TEST_ONLY_IN_DOTENV").is_none());
    if std::env::var_os("DATABASE_URL").is_none() && std::env::var_os("DB_NAME").is_none() {
        // (A developer's shell may name a database of its own, which wins over `.env`.)
        assert_eq!(config.connect_options().get_database(), Some("from_dotenv"));
        assert!(config.has_password());
    }
    if std::env::var_os("DB_LOCK_TIMEOUT").is_none() {
        assert_eq!(config.timeouts().lock, Some(Duration::from_secs(3)));
    }
    let options = config.connect_options();
    let sent = options.get_options().unwrap_or_default();
    assert!(sent.contains("lock_timeout=3000ms"), "{sent}");
    assert!(sent.contains("statement_timeout=45000ms"), "{sent}");
    // A malformed `.env` is an error naming it, and still changes nothing.
    std::fs::write(dir.join(".env"), "DB_NAME='unterminated\n").unwrap();
    let err = Config::from_env_at(Some(&nested)).unwrap_err().to_string();
    assert!(err.starts_with("configuration: .env: "), "{err}");
    assert_eq!(before, std::env::vars_os().collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_servers_timeouts_are_sent_at_connect_except_through_a_transaction_pooler() {
    let config = Config::from_url("postgres://app@db/bank").unwrap();
    assert_eq!(config.timeouts(), Timeouts::default());
    let sent = config.connect_options();
    assert_eq!(
        sent.get_options(),
        Some(
            "-c statement_timeout=0ms -c lock_timeout=10000ms \
             -c idle_in_transaction_session_timeout=60000ms"
        )
    );
    assert_eq!(sent.get_application_name(), Some("ledger"));
    let pooled = config.clone().transaction_pooler();
    assert_eq!(pooled.connect_options().get_options(), None);

    // The URL's own settings, in libpq's words, are the config's.
    let config = Config::from_url(
        "postgres://app@db/bank?application_name=billing&options=-c%20lock_timeout%3D1500ms",
    )
    .unwrap();
    assert_eq!(config.timeouts().lock, Some(Duration::from_millis(1500)));
    assert_eq!(
        config.connect_options().get_application_name(),
        Some("billing")
    );
    let err = Config::from_url("postgres://app@db/bank?options=-c%20lock_timeout%3Dsoon")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("configuration: database URL options: lock_timeout: "),
        "{err}"
    );
    let err = Config::from_lookup(lookup(&[
        ("DATABASE_URL", "postgres://app@db/bank"),
        ("DB_IDLE_TIMEOUT", "ten minutes"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("configuration: DB_IDLE_TIMEOUT: "), "{err}");
}
