//! Least privilege: the grants `ledger grants` generates, proven by running as each role.
//!
//! Each test makes two login roles of its own (named after its database, with a fresh password),
//! grants them what `ledger grants --apply` grants, and connects as them: the service role runs
//! the tour (every operation of the cheat sheet) and the bulk paths, the read-only role lists,
//! reads and dumps, and every write it tries is a typed refusal that writes nothing.

use std::process::Output;

use ledger::grants::{self, BOOKKEEPING, Roles, TABLES};
use ledger::transactions::{self, BatchItem, Movement, Transfer};
use ledger::users::{self, NewUser};
use ledger::{Error, TryStreamExt, accounts, articles, payments, schema};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

use crate::cli::{ledger, text};
use crate::support::{self, url_of};

/// A login role of this test's own.
pub struct Role {
    pub name: String,
    password: String,
}

impl Role {
    /// Creates a role for this database and `suffix`, with a fresh password and no privilege but
    /// PUBLIC's.
    pub async fn create(pool: &PgPool, suffix: &str) -> Self {
        // The test databases' names are long: a role is named by a digest of its database's.
        let database = pool.connect_options().get_database().unwrap().to_owned();
        // FNV-1a: the same database gives the same roles from one run to the next.
        let digest = database.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let name = format!("ledger_test_{digest:016x}_{suffix}");
        let password = uuid::Uuid::new_v4().simple().to_string();
        let sql = format!(
            r#"do $$ begin create role "{name}" login; exception when duplicate_object then null;
               end $$; alter role "{name}" password '{password}'"#
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap();
        Self { name, password }
    }

    /// The test database's URL with this role's user and password.
    fn url(&self, pool: &PgPool) -> String {
        let url = url_of(pool);
        let (scheme, rest) = url.split_once("://").unwrap();
        let host = rest.split_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{}:{}@{host}", self.name, self.password)
    }

    /// A pool on the test database as this role.
    pub async fn pool(&self, pool: &PgPool) -> PgPool {
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .username(&self.name)
            .password(&self.password);
        PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap()
    }

    async fn may(&self, pool: &PgPool, table: &str, privilege: &str) -> bool {
        sqlx::query_scalar!(
            r#"select has_table_privilege($1, $2, $3) as "granted!""#,
            self.name,
            table,
            privilege
        )
        .fetch_one(pool)
        .await
        .unwrap()
    }
}

/// The two roles, granted with `ledger grants --apply` run as the test's (owner) role.
async fn granted_roles(pool: &PgPool) -> (Role, Role) {
    let service = Role::create(pool, "service").await;
    let reader = Role::create(pool, "reader").await;
    let args = [
        "grants",
        "--service",
        &service.name,
        "--read-only",
        &reader.name,
        "--apply",
    ];
    let out = ledger(&args, Some(&url_of(pool)));
    assert!(out.status.success(), "{}", text(&out.stderr));
    (service, reader)
}

/// Asserts that the command failed with one line on stderr holding every one of `expected`.
fn refused(out: &Output, expected: &[&str]) -> String {
    let stderr = crate::cli::without_target(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "missing {part:?} in {stderr}");
    }
    assert!(
        !stderr.contains("42501") && !stderr.contains(" at line "),
        "{stderr}"
    );
    stderr
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn the_grants_name_every_table_sequence_and_function_the_migrations_create(pool: PgPool) {
    let tables = sqlx::query_scalar!(
        r#"select relname::text as "name!" from pg_class
           where relnamespace = current_schema()::regnamespace and relkind in ('r', 'p', 'v', 'm')
           order by 1"#
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut expected: Vec<&str> = TABLES.iter().copied().chain([BOOKKEEPING]).collect();
    expected.sort_unstable();
    assert_eq!(
        tables, expected,
        "a new table needs its place in grants::TABLES"
    );

    let roles = Roles {
        service: Some("svc"),
        read_only: Some("ro"),
    };
    let plan = grants::plan(&pool, &roles).await.unwrap().join(";\n");
    let sequences = sqlx::query_scalar!(
        r#"select relname::text as "name!" from pg_class
           where relnamespace = current_schema()::regnamespace and relkind = 'S'"#
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let functions = sqlx::query_scalar!(
        r#"select proname::text as "name!" from pg_proc
           where pronamespace = current_schema()::regnamespace"#
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!sequences.is_empty() && !functions.is_empty());
    for object in sequences.iter().chain(&functions) {
        assert!(
            plan.contains(object.as_str()),
            "{object} is not granted:\n{plan}"
        );
    }
    assert!(plan.contains(r#"grant select on table _ledger_migrations to "svc""#));
    assert!(!plan.contains(r#"insert, update, delete on table _ledger_migrations"#));

    // Printing grants nothing; the names are checked before the server.
    let out = ledger(&["grants", "--service", "svc"], Some(&url_of(&pool)));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().all(|l| l.ends_with(';')));
    let none = ledger(&["grants"], Some(&url_of(&pool)));
    refused(&none, &["name a service role, a read-only role, or both"]);
    let ghost = ledger(
        &["grants", "--service", "no_such_role", "--apply"],
        Some(&url_of(&pool)),
    );
    refused(
        &ghost,
        &["role \"no_such_role\" does not exist: create it first"],
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn the_service_role_runs_the_tour_and_the_bulk_paths_and_cannot_change_the_schema(
    pool: PgPool,
) {
    granted_roles(&pool).await;
    // Idempotent: a second run on the same database (new passwords, same roles) fails nothing.
    let (service, _) = granted_roles(&pool).await;
    assert!(service.may(&pool, "users", "INSERT").await);
    assert!(service.may(&pool, BOOKKEEPING, "SELECT").await);
    assert!(!service.may(&pool, BOOKKEEPING, "INSERT").await);

    let url = service.url(&pool);
    let seeded = ledger(
        &["seed", "--yes", "--users", "40", "--seed", "5"],
        Some(&url),
    );
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let tour = ledger(&["tour"], Some(&url));
    assert!(tour.status.success(), "{}", text(&tour.stderr));
    assert!(text(&tour.stdout).contains("(rolled back: the database is as the tour found it)"));

    // The library's units of work, as the service role, beyond what the tour runs.
    let as_service = service.pool(&pool).await;
    let mut conn = as_service.acquire().await.unwrap();
    let ids = users::copy_in(&mut conn, &[NewUser::new("copy@example.com", "Copy")])
        .await
        .unwrap();
    let a = accounts::open(&mut *conn, ids[0], None).await.unwrap();
    let b = accounts::open(&mut *conn, ids[0], None).await.unwrap();
    let batch = [
        BatchItem::Deposit(Movement::new(a.id, "10.00".parse().unwrap())),
        BatchItem::Transfer(Transfer::new(a.id, b.id, "4.00".parse().unwrap())),
    ];
    let first = transactions::post_batch_with_key(&mut conn, "roles-batch", &batch)
        .await
        .unwrap();
    let again = transactions::post_batch_with_key(&mut conn, "roles-batch", &batch)
        .await
        .unwrap();
    assert_eq!(
        first, again,
        "the replay reads idempotency_keys as the service role"
    );
    assert!(
        transactions::reconcile(&mut *conn)
            .await
            .unwrap()
            .is_empty()
    );

    // The writes, streams and the poster that neither the tour nor the seed makes.
    assert_eq!(
        accounts::set_statuses(&mut *conn, &[(b.id, "frozen")])
            .await
            .unwrap(),
        1
    );
    assert!(
        accounts::update_status_where(&mut *conn, "frozen", "active")
            .await
            .unwrap()
            >= 1
    );
    let article = articles::insert(&mut *conn, &articles::NewArticle::new("Roles", "Body"))
        .await
        .unwrap();
    articles::update(&mut *conn, article.id, "Roles again", "Body again")
        .await
        .unwrap();
    payments::insert_many(
        &mut conn,
        &[serde_json::json!({"method": "card"})],
        ledger::bulk::BulkOptions::default(),
    )
    .await
    .unwrap();
    let poster = transactions::Poster::new(as_service.clone(), Default::default());
    let posted = poster
        .transfer(
            Transfer::new(a.id, b.id, "1.00".parse().unwrap()).idempotency_key("roles-poster"),
        )
        .await
        .unwrap();
    poster.close().await;
    assert_eq!(posted.amount, "1.00".parse().unwrap());
    let streamed: Vec<_> = transactions::stream_unordered(&as_service)
        .try_collect()
        .await
        .unwrap();
    let copied: Vec<_> = transactions::copy_all_pooled(&as_service)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), copied.len());
    assert!(streamed.iter().any(|e| e.id == posted.id));

    // A migration is the owner's: one line naming the privilege and who has it.
    let migrate = ledger(&["migrate"], Some(&url));
    refused(
        &migrate,
        &[
            "permission denied for schema public",
            "only the role that owns ledger's tables",
        ],
    );
    let err = schema::revert_to(&mut conn, 15).await.unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    assert_eq!(
        schema::status(&mut conn).await.unwrap().len(),
        ledger::MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .count()
    );
    assert!(support::all_applied(&mut conn).await);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn the_read_only_role_reads_lists_and_dumps_and_every_write_is_a_typed_refusal(pool: PgPool) {
    let (service, reader) = granted_roles(&pool).await;
    assert!(!reader.may(&pool, "users", "INSERT").await);
    let seeded = ledger(
        &["seed", "--yes", "--users", "30", "--seed", "9"],
        Some(&service.url(&pool)),
    );
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));

    let url = reader.url(&pool);
    let status = ledger(&["status"], Some(&url));
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(text(&status.stdout).contains("[X] 0016_drop redundant email index"));
    let dumped = ledger(&["dump", "--table", "users"], Some(&url));
    assert!(dumped.status.success(), "{}", text(&dumped.stderr));
    assert!(text(&dumped.stdout).lines().count() > 30);
    let fixture = ledger(&["dump", "--format", "django"], Some(&url));
    assert!(fixture.status.success(), "{}", text(&fixture.stderr));
    refused(
        &ledger(&["migrate"], Some(&url)),
        &[
            "permission denied for schema public",
            "only the role that owns ledger's tables",
            &reader.name,
        ],
    );
    refused(
        &ledger(
            &["seed", "--yes", "--users", "1", "--seed", "10"],
            Some(&url),
        ),
        &[
            "permission denied for table",
            "`ledger seed` writes rows",
            "--service <role>",
        ],
    );

    // The library, as the read-only role: reads work ...
    let as_reader = reader.pool(&pool).await;
    let users_before = users::count_active(&as_reader).await.unwrap();
    assert_eq!(users_before, 30);
    let mut pair = None;
    for user in users::stream_active(&as_reader)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
    {
        let owned = accounts::list_for_user(&as_reader, user.id).await.unwrap();
        if let [first, second, ..] = owned.as_slice() {
            pair = Some((user, first.clone(), second.clone()));
            break;
        }
    }
    let (someone, account, other) = pair.expect("the seed gives some user two accounts");
    transactions::stats(&as_reader).await.unwrap();
    transactions::EntryQuery::new()
        .limit(10)
        .list_for_account(&as_reader, account.id)
        .await
        .unwrap();
    assert!(
        transactions::reconcile(&as_reader)
            .await
            .unwrap()
            .is_empty()
    );
    articles::SearchQuery::new()
        .language(articles::Language::English)
        .limit(5)
        .search(&as_reader, "postgres", 0.0)
        .await
        .unwrap();
    payments::PaymentQuery::new()
        .limit(5)
        .list_containing(&as_reader, &serde_json::json!({}))
        .await
        .unwrap();
    payments::PaymentQuery::new()
        .limit(10)
        .list_by_brand(&as_reader, "Visa")
        .await
        .unwrap();
    transactions::total_completed(&as_reader).await.unwrap();
    transactions::monthly_revenue(&as_reader, "UTC")
        .await
        .unwrap();
    accounts::stream_status_in(&as_reader, &["active", "vip"])
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    articles::ArticleQuery::new()
        .limit(10)
        .list_summaries(&as_reader)
        .await
        .unwrap();
    ledger::users::UserQuery::new()
        .per_page(3)
        .keyset(&as_reader, None)
        .await
        .unwrap();
    // The streams open a read-only transaction (a cursor) or a `COPY`: both are reads.
    let streamed: Vec<_> = transactions::stream_all(&as_reader)
        .try_collect()
        .await
        .unwrap();
    let copied: Vec<_> = transactions::copy_all_pooled(&as_reader)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), copied.len());
    assert!(!streamed.is_empty());

    // ... and each kind of write is refused, typed, not retryable, with a known outcome.
    let mut conn = as_reader.acquire().await.unwrap();
    let key = "reader-transfer";
    let refusals: Vec<(&str, Error)> = vec![
        (
            "users::insert",
            users::insert(&mut *conn, &NewUser::new("ro@example.com", "Ro"))
                .await
                .unwrap_err(),
        ),
        (
            "users::copy_in",
            users::copy_in(&mut conn, &[NewUser::new("ro2@example.com", "Ro")])
                .await
                .unwrap_err(),
        ),
        (
            "accounts::open",
            accounts::open(&mut *conn, someone.id, None)
                .await
                .unwrap_err(),
        ),
        (
            "accounts::set_status",
            accounts::set_status(&mut *conn, account.id, "frozen")
                .await
                .unwrap_err(),
        ),
        (
            "transactions::deposit",
            transactions::deposit(
                &mut conn,
                &Movement::new(account.id, "1.00".parse().unwrap()),
            )
            .await
            .unwrap_err(),
        ),
        (
            "transactions::transfer (keyed)",
            transactions::transfer(
                &mut conn,
                &Transfer::new(account.id, other.id, "0.01".parse().unwrap()).idempotency_key(key),
            )
            .await
            .unwrap_err(),
        ),
        (
            "payments::insert_json",
            payments::insert_json(&mut *conn, &serde_json::json!({"method": "card"}))
                .await
                .unwrap_err(),
        ),
        (
            "articles::insert",
            articles::insert(&mut *conn, &articles::NewArticle::new("Title", "Body"))
                .await
                .unwrap_err(),
        ),
    ];
    for (what, err) in refusals {
        assert!(
            matches!(err, Error::PermissionDenied { .. }),
            "{what}: {err:?}"
        );
        assert!(
            err.to_string().starts_with("permission denied for "),
            "{what}: {err}"
        );
        assert!(!err.is_retryable() && !err.outcome_unknown(), "{what}");
        assert_eq!(err.sqlstate().as_deref(), Some("42501"), "{what}");
    }
    // Nothing was written, and the connection is still usable.
    assert_eq!(users::count_active(&mut *conn).await.unwrap(), users_before);
    let keys = sqlx::query_scalar!(
        r#"select count(*) as "n!" from idempotency_keys where key = $1"#,
        key
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(keys, 0);
    assert_eq!(accounts::get(&pool, account.id).await.unwrap(), account);
}

#[sqlx::test(migrations = false)]
async fn status_only_reads_and_seed_refuses_a_configured_database_it_would_have_to_migrate(
    pool: PgPool,
) {
    // A role with nothing but PUBLIC's privileges lists an unmigrated database ...
    let nobody = Role::create(&pool, "nobody").await;
    let status = ledger(&["status"], Some(&nobody.url(&pool)));
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(text(&status.stdout).contains("[ ] 0001_users"));
    // ... and seed, pointed at it without --migrate, refuses before writing anything.
    let seed = ledger(&["seed", "--yes", "--users", "5"], Some(&url_of(&pool)));
    refused(
        &seed,
        &["of ledger's migrations are not applied", "pass --migrate"],
    );
    let tour = ledger(&["tour"], Some(&url_of(&pool)));
    refused(&tour, &["migrations are not applied", "ledger migrate"]);
    let bookkeeping =
        sqlx::query_scalar!(r#"select to_regclass('_ledger_migrations') is not null as "exists!""#)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        !bookkeeping,
        "neither status nor a refused seed created sqlx's table"
    );
}
