//! Adoption, proven against real Django: the pinned virtualenvs that `tests/django/setup.sh`
//! builds (Django 5.2 LTS and Django 6.1, both with psycopg 3) migrate the seed's models and fill
//! the database with their own code; `ledger::adopt` takes it over; then each side reads what the
//! other wrote. Every test that drives Django runs once per release: `django::django_5_2::*` and
//! `django::django_6_1::*`.
//!
//! They need a release's virtualenv, so they are `#[ignore]`d with the command that builds it:
//! plain `cargo test` lists them as ignored, and `.ci/run` (which builds both virtualenvs) runs
//! them with `--ignored`, where a missing virtualenv fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use ledger::adopt;
use ledger::articles::{self, Language};
use ledger::bulk::BulkOptions;
use ledger::transactions::{self, Movement, Transfer};
use ledger::users::{self, NewUser};
use ledger::{Error, accounts, fixture, payments, schema};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use crate::support::{self, blocking, dec, url_of};

/// A Django release the tests drive, each from a virtualenv of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Django 5.2 LTS (`tests/django/requirements.txt`, the machine's Python 3.11).
    Lts5_2,
    /// Django 6.1 (`tests/django/requirements-6.1.txt`, the CPython 3.13 of
    /// `tests/django/python.sh`): database-level `on_delete`.
    Django6_1,
}

impl Release {
    /// The virtualenv `tests/django/setup.sh` builds for it, and the command that builds it.
    fn venv(self) -> (&'static str, &'static str) {
        match self {
            Release::Lts5_2 => ("target/django-venv", "tests/django/setup.sh"),
            Release::Django6_1 => (
                "target/django-venv-6.1",
                "tests/django/setup.sh target/django-venv-6.1 tests/django/requirements-6.1.txt",
            ),
        }
    }
}

/// Runs each named test (an `async fn(PgPool, Release)`) once per Django release, as
/// `django_5_2::name` and `django_6_1::name`, each in a database of its own.
macro_rules! on_each_release {
    ($($name:ident),* $(,)?) => {
        mod django_5_2 {
            $(
                #[sqlx::test(migrations = false)]
                #[ignore = "needs the Django 5.2 virtualenv: bash tests/django/setup.sh (docs/development.md)"]
                async fn $name(pool: sqlx::PgPool) {
                    super::$name(pool, super::Release::Lts5_2).await
                }
            )*
        }
        mod django_6_1 {
            $(
                #[sqlx::test(migrations = false)]
                #[ignore = "needs the Django 6.1 virtualenv: bash tests/django/setup.sh target/django-venv-6.1 tests/django/requirements-6.1.txt (docs/development.md)"]
                async fn $name(pool: sqlx::PgPool) {
                    super::$name(pool, super::Release::Django6_1).await
                }
            )*
        }
    };
}

on_each_release!(
    a_django_database_is_adopted_with_no_row_lost_and_both_sides_read_each_other,
    a_foreign_key_that_deletes_on_the_server_is_refused_with_the_model_change,
    an_interrupted_adoption_resumes,
    django_keeps_moving_money_while_ledger_adopts_the_database,
    the_cheat_sheets_own_models_are_adopted_under_another_app_label,
    a_model_with_fields_of_its_own_is_adopted_only_when_ledger_can_insert_into_it,
    djangos_fixtures_round_trip_through_ledger,
    django_changes_the_schema_while_ledger_moves_money_and_no_call_fails,
);

/// The Django project, copied per test so that the `Meta` change and the migration it makes
/// stay out of the repository.
struct Django {
    python: PathBuf,
    release: Release,
    dir: PathBuf,
    url: String,
    /// The Django app installed (`LEDGER_DJANGO_APP`): `myapp`, or `sheet`, the cheat sheet's
    /// models exactly.
    app: &'static str,
}

impl Django {
    /// The project against this test's database.
    ///
    /// # Panics
    /// Without the release's virtualenv: the test is `#[ignore]`d for that reason, so it runs
    /// only where it was asked for (`--ignored`), and a missing system is a failure there.
    fn for_test(name: &str, pool: &PgPool, release: Release) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (venv, setup) = release.venv();
        let python = root.join(venv).join("bin/python");
        assert!(
            python.exists(),
            "{name}: no {release:?} virtualenv at {}: run {setup}",
            python.display()
        );
        let database = pool.connect_options().get_database().unwrap().to_owned();
        let dir = std::env::temp_dir().join(format!("ledger-django-{database}"));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&root.join("tests/django"), &dir);
        if release == Release::Django6_1 {
            // The cheat sheet's `CheckConstraint(check=...)` is gone in Django 6.0 (renamed
            // `condition` in 5.1, whose migrations already say `condition`): the one change its
            // models need to load on 6.x. docs/adopting-django.md says so.
            for app in ["myapp", "sheet"] {
                let models = dir.join(app).join("models.py");
                let text = std::fs::read_to_string(&models).unwrap();
                assert!(text.contains("check=models.Q("), "{app}: {text}");
                std::fs::write(
                    &models,
                    text.replace("check=models.Q(", "condition=models.Q("),
                )
                .unwrap();
            }
        }
        Self {
            python,
            release,
            dir,
            url: url_of(pool),
            app: "myapp",
        }
    }

    /// The same project with another of its apps installed in place of `myapp`.
    fn with_app(mut self, app: &'static str) -> Self {
        self.app = app;
        self
    }

    /// Runs `manage.py` and returns its standard output; panics with its error output on failure.
    async fn manage(&self, args: &[&str]) -> String {
        let mut command = Command::new(&self.python);
        command
            .args(["-W", "ignore", "manage.py"])
            .args(args)
            .current_dir(&self.dir)
            .env("DATABASE_URL", &self.url)
            .env("LEDGER_DJANGO_APP", self.app)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let output = blocking(move || command.output().unwrap()).await;
        assert!(
            output.status.success(),
            "manage.py {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Sets the `on_delete` of each model field of `myapp/models.py` that begins with the given
    /// text (`("user     = models.ForeignKey(User, ", "DB_CASCADE")`).
    fn set_on_delete(&self, fields: &[(&str, &str)]) {
        let models = self.dir.join("myapp/models.py");
        let mut text = std::fs::read_to_string(&models).unwrap();
        for (field, rule) in fields {
            let start = text
                .find(field)
                .unwrap_or_else(|| panic!("no {field:?} in models.py"));
            let rest = &text[start..];
            let from = rest.find("on_delete=models.").unwrap() + "on_delete=models.".len();
            let to = from + rest[from..].find(',').unwrap();
            text.replace_range(start + from..start + to, rule);
        }
        std::fs::write(&models, text).unwrap();
    }

    /// What Django's ORM reads (`manage.py facts`).
    async fn facts(&self, args: &[&str]) -> Value {
        let mut all = vec!["facts"];
        all.extend_from_slice(args);
        serde_json::from_str(self.manage(&all).await.trim()).unwrap()
    }

    /// Makes the change the adoption report names: each renamed model's `Meta.db_table`, then the
    /// migration that records it, faked because the tables are renamed already.
    async fn follow_the_report(&self, report: &adopt::Report) {
        assert!(
            report
                .django_changes
                .iter()
                .any(|c| c.contains("Payment: add `class Meta: db_table = 'payments'`")),
            "{:?}",
            report.django_changes
        );
        let models = self.dir.join(self.app).join("models.py");
        let text = std::fs::read_to_string(&models).unwrap();
        let text = text.replace(
            "    data = models.JSONField(default=dict)\n",
            "    data = models.JSONField(default=dict)\n\n    class Meta:\n        db_table = 'payments'\n",
        );
        let text = format!(
            "{}\n\n    class Meta:\n        db_table = 'articles'\n",
            text.trim_end()
        );
        std::fs::write(&models, text).unwrap();
        self.manage(&["makemigrations", self.app]).await;
        self.manage(&["migrate", self.app, "--fake"]).await;
    }
}

impl Drop for Django {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A digest of every row of the seed's columns, per table (`payment` and `article` under
/// whichever name they have): equal before and after means no row or value was lost.
async fn digests(pool: &PgPool, payments: &str, articles: &str) -> Vec<(String, i64)> {
    let queries = [
        "select md5(string_agg(row(id, email, name, created_at, deleted_at)::text, ',' order by id)), count(*) from users".to_owned(),
        "select md5(string_agg(row(id, user_id, balance, currency, status)::text, ',' order by id)), count(*) from accounts".to_owned(),
        "select md5(string_agg(row(id, from_account_id, to_account_id, amount, type, status, metadata, created_at)::text, ',' order by id)), count(*) from transactions".to_owned(),
        format!("select md5(string_agg(row(id, data)::text, ',' order by id)), count(*) from {payments}"),
        format!("select md5(string_agg(row(id, title, content, created_at)::text, ',' order by id)), count(*) from {articles}"),
    ];
    let mut out = Vec::new();
    for sql in queries {
        // Table names differ before and after the rename: no query macro can name both.
        out.push(
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap(),
        );
    }
    out
}

/// Django's own tables (`auth_*`, `django_*`): each one's definition and a digest of its rows.
async fn django_tables(pool: &PgPool) -> Vec<(String, String)> {
    let tables = sqlx::query_scalar!(
        r#"
        select relname::text as "name!" from pg_class
        where relkind = 'r' and relnamespace = current_schema()::regnamespace
          and (relname like 'auth\_%' or relname like 'django\_%')
        order by 1
        "#
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        // Django's table names, found at run time: no query macro can name them.
        let digest: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select coalesce(md5(string_agg(t::text, ',' order by t::text)), '') || ' ' || \
             (select string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' \
                                order by attnum) \
              from pg_attribute where attrelid = '{table}'::regclass and attnum > 0) \
             from {table} t"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((table, digest));
    }
    out
}

/// The catalog as ledger's code depends on it: every column with its type, nullability and
/// whether it has a default; every named check, foreign and unique key with its definition, and
/// every `ledger_*` function's; every
/// valid index's definition, names aside (an adopted database keeps Django's under their names).
async fn catalog(conn: &mut PgConnection) -> (Vec<String>, Vec<String>, Vec<String>) {
    let tables = ledger::grants::TABLES.map(String::from);
    let columns = sqlx::query_scalar!(
        r#"
        select c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
               || case when a.attnotnull then ' not null' else '' end
               || case when a.atthasdef then ' default ' || pg_get_expr(d.adbin, d.adrelid)
                       else '' end
               || case when a.attidentity <> '' then ' identity ' || a.attidentity::text
                       else '' end as "column!"
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where c.relname = any($1) and c.relnamespace = current_schema()::regnamespace
          and a.attnum > 0 and not a.attisdropped
        order by 1
        "#,
        &tables
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let constraints = sqlx::query_scalar!(
        r#"
        select c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
               || case when k.convalidated then '' else ' NOT VALIDATED' end
               || case when k.condeferrable then ' DEFERRABLE' else '' end as "constraint!"
        from pg_constraint k
        join pg_class c on c.oid = k.conrelid
        where c.relname = any($1) and k.contype in ('c', 'f', 'u')
        order by 1
        "#,
        &tables
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    // Ledger's functions count as rules too: every movement calls `ledger_post`.
    let functions = sqlx::query_scalar!(
        r#"
        select pg_get_functiondef(p.oid) as "definition!"
        from pg_proc p
        where p.proname like 'ledger\_%' and p.pronamespace = current_schema()::regnamespace
        order by 1
        "#
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert!(!functions.is_empty(), "ledger_post is missing");
    let constraints = [constraints, functions].concat();
    let indexes = sqlx::query_scalar!(
        r#"
        select distinct c.relname || ' ' || x.indisunique || ' '
               || regexp_replace(pg_get_indexdef(x.indexrelid), '^.* USING ', 'USING ')
               as "index!"
        from pg_index x
        join pg_class c on c.oid = x.indrelid
        where c.relname = any($1) and x.indisvalid
        order by 1
        "#,
        &tables
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    (columns, constraints, indexes)
}

/// A name for another database, unique to this test. The test's own name is already 63 bytes
/// long, PostgreSQL's limit, past which a longer name would be cut back to the test's own.
fn beside(pool: &PgPool, suffix: &str) -> String {
    let own = pool.connect_options().get_database().unwrap().to_owned();
    let unique = &own[own.len().saturating_sub(24)..];
    format!("ledger_{unique}_{suffix}").to_lowercase()
}

/// A database ledger's migrations made, beside the test's own, for comparing catalogs.
async fn fresh_catalog(pool: &PgPool) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (fresh, name) = scratch_database(pool, "fresh").await;
    let mut conn = fresh.acquire().await.unwrap();
    let connected = sqlx::query_scalar!(r#"select current_database()::text as "name!""#)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(connected, name, "the comparison must read another database");
    schema::migrate(&mut conn).await.unwrap();
    let found = catalog(&mut conn).await;
    drop(conn);
    drop_database(pool, fresh, &name).await;
    found
}

async fn a_django_database_is_adopted_with_no_row_lost_and_both_sides_read_each_other(
    pool: PgPool,
    release: Release,
) {
    let django = Django::for_test("adopted", &pool, release);
    django.manage(&["migrate", "-v0"]).await;
    django.manage(&["fill", "--users", "60"]).await;
    let before_facts = django.facts(&[]).await;
    assert!(before_facts["statuses"]["success"].as_i64().unwrap() > 0);

    // A row Django accepted and ledger's rules refuse: the dry run names it, apply refuses.
    let mut conn = pool.acquire().await.unwrap();
    let bad = sqlx::query_scalar!(
        r#"
        update accounts set currency = 'usd'
        where id = (select id from accounts order by id limit 1)
        returning id
        "#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let dry = adopt::inspect(&mut conn, "myapp").await.unwrap();
    assert_eq!(dry.django_migrations, ["0001_initial"]);
    assert!(!dry.is_adopted());
    assert_eq!(dry.violations.len(), 1, "{:?}", dry.violations);
    let violation = &dry.violations[0];
    assert_eq!(
        (violation.rule, violation.rows, &violation.sample_ids),
        ("accounts_currency_format", 1, &vec![bad.to_string()])
    );
    let refused = adopt::apply(&mut conn, "myapp", &mut |_| {}).await;
    assert!(
        matches!(&refused, Err(Error::NotAdoptable(m)) if m.contains("accounts_currency_format")),
        "{refused:?}"
    );
    // Nothing was changed: a second dry run plans the same steps.
    assert_eq!(adopt::inspect(&mut conn, "myapp").await.unwrap(), dry);
    sqlx::query!(
        "update accounts set currency = 'USD' where id = $1",
        bad.as_uuid()
    )
    .execute(&pool)
    .await
    .unwrap();
    let before = digests(&pool, "myapp_payment", "myapp_article").await;
    let djangos_own = django_tables(&pool).await;
    assert!(djangos_own.len() >= 8, "{djangos_own:?}");

    let mut ran = Vec::new();
    let report = adopt::apply(&mut conn, "myapp", &mut |s| ran.push(s.name.clone()))
        .await
        .unwrap();
    assert!(report.is_adopted() && report.violations.is_empty());
    assert!(ran.len() > 40, "{ran:?}");
    // Again: nothing left to do.
    let mut again = Vec::new();
    adopt::apply(&mut conn, "myapp", &mut |s| again.push(s.name.clone()))
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");

    // No row and no value lost, and Django's own tables untouched.
    assert_eq!(digests(&pool, "payments", "articles").await, before);
    assert_eq!(django_tables(&pool).await, djangos_own);
    // ledger migrate continues from here, and every migration is recorded.
    schema::migrate(&mut conn).await.unwrap();
    assert!(support::all_applied(&mut conn).await);
    // The schema ledger's code depends on is the one its migrations make; the adopted database
    // keeps Django's extra indexes besides.
    let (columns, constraints, indexes) = catalog(&mut conn).await;
    let (fresh_columns, fresh_constraints, fresh_indexes) = fresh_catalog(&pool).await;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(columns), sorted(fresh_columns));
    assert_eq!(constraints, fresh_constraints);
    let missing: Vec<_> = fresh_indexes
        .iter()
        .filter(|i| !indexes.contains(i))
        .collect();
    assert!(missing.is_empty(), "{missing:?}");

    // Ledger's answers on Django's data equal Django's.
    let success = transactions::total_with_status_across_currencies(&pool, &"success".into())
        .await
        .unwrap();
    assert_eq!(success.to_string(), before_facts["success_total"]);
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
    assert_eq!(
        users::count_active(&pool).await.unwrap(),
        before_facts["live_users"].as_i64().unwrap()
    );
    let discounted = payments::PaymentQuery::new()
        .limit(1000)
        .list_with_key(&pool, "discount")
        .await
        .unwrap();
    assert_eq!(
        discounted.len() as i64,
        before_facts["with_discount"].as_i64().unwrap()
    );
    // Django stored `discount` as an object: the typed document reads every one and keeps it.
    for payment in &discounted {
        let typed = payment.typed().unwrap();
        assert!(typed.discount.is_none() && typed.extra["discount"].is_object());
        assert_eq!(
            typed.shipping.and_then(|s| s.country).map(|c| c.len()),
            Some(2)
        );
    }

    // Ledger writes; Django reads it.
    django.follow_the_report(&report).await;
    let pair = sqlx::query!(
        r#"
        select f.id as "from", t.id as "to"
        from accounts f
        join accounts t on t.currency = f.currency and t.id <> f.id and t.status = 'active'
        where f.status = 'active' and f.balance >= 100
        order by f.id, t.id
        limit 1
        "#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (from, to) = (pair.from, pair.to);
    let moved = transactions::transfer(&mut conn, &Transfer::new(from, to, dec("12.34")))
        .await
        .unwrap();
    let payment = payments::insert_json(
        &pool,
        &json!({"method": "credit_card", "discount": {"code": "LEDGER", "percent": 5}}),
    )
    .await
    .unwrap();
    let new_users: Vec<NewUser> = (0..3)
        .map(|i| NewUser::new(format!("ledger{i}@example.com"), format!("Ledger {i}")))
        .collect();
    users::insert_many(&mut conn, &new_users, BulkOptions::default())
        .await
        .unwrap();
    let seen = django
        .facts(&[
            "--transaction",
            &moved.id.to_string(),
            "--payment",
            &payment.id.to_string(),
            "--user-email",
            "ledger1@example.com",
        ])
        .await;
    assert_eq!(
        seen["transaction_rows"],
        json!([{
            "type": "transfer", "status": "completed", "amount": "12.34",
            "from": from.to_string(), "to": to.to_string(),
            "metadata": {},
        }])
    );
    assert_eq!(
        seen["payment_rows"],
        json!([{"method": "credit_card", "discount": {"code": "LEDGER", "percent": 5}}])
    );
    assert_eq!(
        seen["user_rows"],
        json!([{"email": "ledger1@example.com", "name": "Ledger 1"}])
    );
    assert_eq!(seen["balances"], before_facts["balances"]);

    // Django writes, with the seed's own code; ledger reads it.
    django
        .manage(&[
            "shell",
            "-c",
            "from myapp.models import Payment, Article\n\
             Payment.objects.create(data={'method': 'paypal', 'brand': 'Visa'})\n\
             Article.objects.create(title='Written by Django', content='dual running')",
        ])
        .await;
    let paypal = payments::PaymentQuery::new()
        .limit(1000)
        .list_by_method(&pool, "paypal")
        .await
        .unwrap();
    assert!(
        paypal
            .iter()
            .any(|p| p.id.get() > payment.id.get() && p.data.to_value().unwrap()["brand"] == "Visa"),
        "Django's new payment follows ledger's id"
    );
    let hits = ledger::articles::SearchQuery::new()
        .language(ledger::articles::Language::English)
        .limit(10)
        .search_titles(&pool, "written django")
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
}

/// Django 6.1's database-level `on_delete` (`DB_CASCADE`, `DB_SET_NULL`): the server deletes or
/// nulls, and Django leaves it to the server. Under Django 6.1 the models say so and its own
/// migration writes the keys; under 5.2, which has no such option, the keys are rewritten as
/// 6.1's schema editor writes them (`on delete cascade deferrable initially deferred`). Adoption
/// refuses them, naming each and the model change, and changes nothing; with the cheat sheet's
/// `PROTECT` back, it plans again.
async fn a_foreign_key_that_deletes_on_the_server_is_refused_with_the_model_change(
    pool: PgPool,
    release: Release,
) {
    let django = Django::for_test("db_cascade", &pool, release);
    django.manage(&["migrate", "-v0"]).await;
    django.manage(&["fill", "--users", "5"]).await;
    let mut conn = pool.acquire().await.unwrap();
    let rewrite = |rule: &'static str,
                   table: &'static str,
                   column: &'static str,
                   to: &'static str| {
        format!(
            "do $$ declare k text; begin
               select conname into k from pg_constraint c join pg_attribute a
                 on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
                 where c.conrelid = '{table}'::regclass and c.contype = 'f' and a.attname = '{column}';
               execute format('alter table {table} drop constraint %I', k);
               execute format('alter table {table} add constraint %I foreign key ({column})
                 references {to} (id) {rule} deferrable initially deferred', k);
             end $$"
        )
    };
    // The keys' `on_delete`, in myapp/models.py or on the server. Django 6.1 wants one kind per
    // chain (fields.E323, models.E050): with the account's owner on the server, both of a
    // transaction's keys are too. Django 5.2's keys are rewritten by hand, and there
    // `to_account_id` keeps PROTECT, so that the refusal is seen to name only the keys that
    // delete on the server.
    let receiver = match release {
        Release::Django6_1 => "DB_SET_NULL",
        Release::Lts5_2 => "PROTECT",
    };
    let set_rules =
        async |conn: &mut PgConnection, [user, sender, receiver]: [&str; 3]| match release {
            Release::Django6_1 => {
                django.set_on_delete(&[
                    ("user     = models.ForeignKey(User, ", user),
                    ("from_account    = models.ForeignKey(Account, ", sender),
                    ("to_account      = models.ForeignKey(Account, ", receiver),
                ]);
                django.manage(&["makemigrations", "myapp", "-v0"]).await;
                django.manage(&["migrate", "myapp", "-v0"]).await;
            }
            Release::Lts5_2 => {
                let sql = |rule: &str| match rule {
                    "DB_CASCADE" => "on delete cascade",
                    "DB_SET_NULL" => "on delete set null",
                    _ => "",
                };
                for ddl in [
                    rewrite(sql(user), "accounts", "user_id", "users"),
                    rewrite(sql(sender), "transactions", "from_account_id", "accounts"),
                    rewrite(sql(receiver), "transactions", "to_account_id", "accounts"),
                ] {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
            }
        };
    set_rules(&mut conn, ["DB_CASCADE", "DB_SET_NULL", receiver]).await;
    let keys = async |conn: &mut PgConnection| {
        sqlx::query_scalar!(
            r#"select conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
                   as "key!"
               from pg_constraint
               where contype in ('f', 'c', 'u') and connamespace = current_schema()::regnamespace
               order by 1"#
        )
        .fetch_all(conn)
        .await
        .unwrap()
    };
    let before = keys(&mut conn).await;
    for rule in ["ON DELETE CASCADE", "ON DELETE SET NULL"] {
        assert!(
            before.iter().any(|k| k.contains(rule)),
            "{rule}: {before:?}"
        );
    }
    let refused = adopt::inspect(&mut conn, "myapp").await;
    let Err(Error::NotAdoptable(message)) = &refused else {
        panic!("expected the keys refused: {refused:?}")
    };
    for part in [
        "accounts.user_id's foreign key",
        "`on delete cascade` (Django 6.1's on_delete=models.DB_CASCADE)",
        "transactions.from_account_id's foreign key",
        "`on delete set null` (Django 6.1's on_delete=models.DB_SET_NULL)",
        "on_delete=models.PROTECT",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_eq!(
        message.contains("transactions.to_account_id's foreign key"),
        receiver == "DB_SET_NULL",
        "{message}"
    );
    let applied = adopt::apply(&mut conn, "myapp", &mut |_| {}).await;
    assert!(
        matches!(applied, Err(Error::NotAdoptable(_))),
        "{applied:?}"
    );
    assert_eq!(keys(&mut conn).await, before, "nothing was changed");

    // The cheat sheet's PROTECT (no action on the server) back: adoption plans again.
    set_rules(&mut conn, ["PROTECT"; 3]).await;
    let report = adopt::inspect(&mut conn, "myapp").await.unwrap();
    assert!(
        !report.is_adopted() && report.violations.is_empty(),
        "{report}"
    );
}

/// An adoption interrupted twice, as a live database interrupts one: a catalog step that cannot
/// get its lock within `lock_timeout` gives up instead of queueing writers behind it, and an
/// index build cancelled mid-way leaves an invalid index. Each time, the next run resumes and the
/// end state is the same.
async fn an_interrupted_adoption_resumes(pool: PgPool, release: Release) {
    let django = Django::for_test("resumes", &pool, release);
    django.manage(&["migrate", "-v0"]).await;
    django.manage(&["fill", "--users", "20"]).await;
    let before = digests(&pool, "myapp_payment", "myapp_article").await;
    let mut conn = pool.acquire().await.unwrap();

    // 1. A reader holds `users` open: the first step on `users` waits 5 s for its lock, then fails.
    let mut reader = pool.acquire().await.unwrap();
    // Transaction control and a read in one simple-protocol round trip: the connection stays
    // inside the transaction afterwards, which a query macro's statement cannot leave behind.
    sqlx::raw_sql("begin; select count(*) from users")
        .execute(&mut *reader)
        .await
        .unwrap();
    let failed = adopt::apply(&mut conn, "myapp", &mut |_| {}).await;
    // A lock not granted in time is transient: the run may simply be repeated.
    let Err(Error::Transient { source: err, .. }) = &failed else {
        panic!("expected a lock timeout: {failed:?}")
    };
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("55P03"),
        "{err}"
    );
    // Ends the transaction the raw `begin` above opened on this connection.
    sqlx::raw_sql("commit").execute(&mut *reader).await.unwrap();
    let partway = adopt::inspect(&mut conn, "myapp").await.unwrap();
    let done: Vec<_> = partway.steps.iter().filter(|s| s.done).collect();
    assert!(
        done.iter()
            .any(|s| s.name == "rename myapp_payment to payments")
    );
    assert!(!partway.is_adopted());

    // 2. An old snapshot makes the first index build wait; the build is cancelled, leaving an
    // invalid index under ledger's name.
    // As above; `django_migrations` is Django's table, which the query macros' schema lacks.
    sqlx::raw_sql("begin isolation level repeatable read; select count(*) from django_migrations")
        .execute(&mut *reader)
        .await
        .unwrap();
    let adopting = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            adopt::apply(&mut conn, "myapp", &mut |_| {}).await
        })
    };
    let cancelled = loop {
        let cancelled = sqlx::query_scalar!(
            r#"
            select coalesce(bool_or(pg_cancel_backend(pid)), false) as "cancelled!"
            from pg_stat_activity
            where datname = current_database() and query like 'create index concurrently%'
              and wait_event_type = 'Lock'
            "#
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if cancelled {
            break true;
        }
        if adopting.is_finished() {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(cancelled, "the index build never waited");
    let failed = adopting.await.unwrap();
    assert!(failed.is_err(), "{failed:?}");
    // Ends the transaction the raw `begin` above opened on this connection.
    sqlx::raw_sql("commit").execute(&mut *reader).await.unwrap();
    let invalid =
        sqlx::query_scalar!(r#"select count(*) as "n!" from pg_index where not indisvalid"#)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(invalid, 1);

    // 3. The next run resumes: the invalid index is built again, and the end state is whole.
    let report = adopt::apply(&mut conn, "myapp", &mut |_| {}).await.unwrap();
    assert!(report.is_adopted());
    let invalid =
        sqlx::query_scalar!(r#"select count(*) as "n!" from pg_index where not indisvalid"#)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(invalid, 0);
    assert_eq!(digests(&pool, "payments", "articles").await, before);
    let deposit = transactions::deposit(
        &mut conn,
        &Movement::new(
            sqlx::query_scalar!(
                "select id from accounts where status = 'active' order by id limit 1"
            )
            .fetch_one(&pool)
            .await
            .unwrap(),
            dec("1.00"),
        ),
    )
    .await;
    assert!(deposit.is_ok(), "{deposit:?}");
}

/// Adoption on a live database: Django keeps moving money with the seed's `transfer_funds` while
/// `apply` runs, and neither side fails. Each catalog step waits at most for one short Django
/// transaction, and Django waits at most for one catalog step.
async fn django_keeps_moving_money_while_ledger_adopts_the_database(
    pool: PgPool,
    release: Release,
) {
    let django = Django::for_test("live", &pool, release);
    django.manage(&["migrate", "-v0"]).await;
    django.manage(&["fill", "--users", "40"]).await;
    let transfers = || async {
        sqlx::query_scalar!(r#"select count(*) as "n!" from transactions where type = 'transfer'"#)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = transfers().await;
    let stop = django.dir.join("stop");
    let churn = {
        let mut command = Command::new(&django.python);
        command
            .args([
                "-W",
                "ignore",
                "manage.py",
                "churn",
                "--think-ms",
                "5",
                "--stop-file",
            ])
            .arg(&stop)
            .current_dir(&django.dir)
            .env("DATABASE_URL", &django.url);
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    // Django is moving money before the adoption starts...
    while transfers().await < before + 20 {
        assert!(!churn.is_finished(), "churn stopped early");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut conn = pool.acquire().await.unwrap();
    let at_start = transfers().await;
    let report = adopt::apply(&mut conn, "myapp", &mut |_| {}).await.unwrap();
    let at_end = transfers().await;
    assert!(report.is_adopted());
    // ... and while it runs, and after.
    assert!(
        at_end > at_start,
        "Django moved no money during the adoption"
    );
    while transfers().await < at_end + 20 {
        assert!(!churn.is_finished(), "churn stopped early");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    std::fs::write(&stop, "").unwrap();
    let output = churn.await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let done: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(done["errors"], json!([]), "{done}");
    assert_eq!(
        transfers().await - before,
        done["ok"].as_i64().unwrap(),
        "every transfer Django made is there, once"
    );
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
}

/// The models exactly as the cheat sheet gives them (no `created_at` on `Payment` or `Article`),
/// under the app label `sheet`: ledger's additions are steps, never refusals.
async fn the_cheat_sheets_own_models_are_adopted_under_another_app_label(
    pool: PgPool,
    release: Release,
) {
    let django = Django::for_test("sheet", &pool, release);
    let django = django.with_app("sheet");
    django.manage(&["migrate", "-v0"]).await;
    django
        .manage(&[
            "shell",
            "-c",
            "from sheet.models import *\n\
             u = User.objects.create(email='ann@example.com', name='Ann')\n\
             Account.objects.create(user=u, balance='10.00')\n\
             Payment.objects.create(data={'method': 'credit_card', 'brand': 'Visa'})\n\
             Article.objects.create(title='PostgreSQL full text search', content='With Django')",
        ])
        .await;
    let columns = sqlx::query_scalar!(
        r#"select count(*) as "n!" from information_schema.columns
           where table_name in ('sheet_payment', 'sheet_article') and column_name = 'created_at'"#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(columns, 0, "the sheet's models have no created_at");

    let mut conn = pool.acquire().await.unwrap();
    let dry = adopt::inspect(&mut conn, "sheet").await.unwrap();
    assert!(dry.violations.is_empty(), "{:?}", dry.violations);
    // Before adoption the tables are Django's, and `ledger grants` refuses (it grants on
    // ledger's objects): a role with PostgreSQL's `pg_read_all_data` runs the same dry run, and
    // a role with nothing is refused in one typed line.
    let auditor = crate::roles::Role::create(&pool, "adopt_auditor").await;
    // (The role outlives the test's database: an earlier run on this server granted it.)
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        r#"revoke pg_read_all_data from "{}""#,
        auditor.name
    )))
    .execute(&pool)
    .await
    .unwrap();
    let as_auditor = auditor.pool(&pool).await;
    let refused = adopt::inspect(&mut as_auditor.acquire().await.unwrap(), "sheet").await;
    assert!(
        matches!(&refused, Err(Error::PermissionDenied { .. })),
        "{refused:?}"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        r#"grant pg_read_all_data to "{}""#,
        auditor.name
    )))
    .execute(&pool)
    .await
    .unwrap();
    let audited = adopt::inspect(&mut as_auditor.acquire().await.unwrap(), "sheet")
        .await
        .unwrap();
    assert_eq!(
        audited
            .pending()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>(),
        dry.pending().map(|s| s.name.clone()).collect::<Vec<_>>()
    );
    as_auditor.close().await;
    let pending: Vec<&str> = dry.pending().map(|s| s.name.as_str()).collect();
    for step in [
        "rename sheet_payment to payments",
        "rename sheet_article to articles",
        "add payments.created_at (now() for the rows there)",
        "add articles.created_at (now() for the rows there)",
    ] {
        assert!(pending.contains(&step), "{step} not in {pending:?}");
    }
    let before = chrono::Utc::now();
    let report = adopt::apply(&mut conn, "sheet", &mut |_| {}).await.unwrap();
    assert!(report.is_adopted(), "{report}");
    assert!(support::all_applied(&mut conn).await);

    // Django's rows read back through ledger, with the added created_at, and ledger writes.
    let found = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&pool, "postgresql", 0.0)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let article = articles::get(&pool, found[0].id).await.unwrap();
    assert_eq!(article.content, "With Django");
    assert!(
        article.created_at >= before && article.created_at <= chrono::Utc::now(),
        "the rows there got now() when the column was added"
    );
    let visa = payments::PaymentQuery::new()
        .limit(10)
        .list_by_brand(&pool, "Visa")
        .await
        .unwrap();
    assert_eq!(visa.len(), 1);
    let ann = users::find_by_email(&pool, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    let account = accounts::list_for_user(&pool, ann.id)
        .await
        .unwrap()
        .remove(0);
    let entry = transactions::deposit(
        &mut conn,
        &Movement::new(account.id, "5.00".parse().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(entry.amount.to_string(), "5.00");
    // Django funded the account directly (10.00, no ledger entry): reconcile names it, as it
    // names any balance that no entry explains.
    assert_eq!(transactions::reconcile(&pool).await.unwrap().len(), 1);

    // Adopted, the dry run only reads: the read-only role's generated grants cover it.
    let reader = crate::roles::Role::create(&pool, "adopt_reader").await;
    let roles = ledger::grants::Roles {
        service: None,
        read_only: Some(&reader.name),
    };
    ledger::grants::apply(&mut conn, &roles).await.unwrap();
    let as_reader = reader.pool(&pool).await;
    let mut reader_conn = as_reader.acquire().await.unwrap();
    let again = adopt::inspect(&mut reader_conn, "sheet").await.unwrap();
    assert!(again.is_adopted(), "{again}");
}

#[sqlx::test(migrations = false)]
async fn a_database_django_did_not_make_is_refused_by_name(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let refused = adopt::inspect(&mut conn, "myapp").await;
    assert!(
        matches!(&refused, Err(Error::NotAdoptable(m)) if m.contains("django_migrations")),
        "{refused:?}"
    );
    assert!(matches!(
        adopt::inspect(&mut conn, "My-App").await,
        Err(Error::InvalidInput {
            field: "app_label",
            ..
        })
    ));
    // A Django database whose model has another type is named column by column. (Several DDL
    // statements, on tables the query macros' schema has otherwise: raw SQL.)
    sqlx::raw_sql(
        "create table django_migrations (id serial, app text, name text); \
         insert into django_migrations (app, name) values ('myapp', '0001_initial'); \
         create table users (id uuid not null, email varchar(254) not null, \
             name varchar(300) not null, created_at timestamptz not null, deleted_at timestamptz)",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let refused = adopt::inspect(&mut conn, "myapp").await;
    let Err(Error::NotAdoptable(message)) = refused else {
        panic!("{refused:?}")
    };
    assert!(
        message.contains("users.name is character varying(300) not null")
            && message.contains("accounts.id is missing"),
        "{message}"
    );
    assert!(adopt::apply(&mut conn, "myapp", &mut |_| {}).await.is_err());
    let tables = sqlx::query_scalar!(
        r#"
        select count(*) as "n!" from pg_class
        where relnamespace = 'public'::regnamespace and relkind = 'r'
        "#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 2, "nothing was created");
}

/// A second database on the test's server, named after the test's own: `(pool, name)`.
async fn scratch_database(pool: &PgPool, suffix: &str) -> (PgPool, String) {
    let name = beside(pool, suffix);
    let mut admin = pool.acquire().await.unwrap();
    for sql in [
        format!("drop database if exists {name}"),
        format!("create database {name}"),
    ] {
        // A database's name cannot be a bind parameter, and these statements return nothing:
        // no query macro can express them.
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *admin)
            .await
            .unwrap();
    }
    let options = (*pool.connect_options()).clone().database(&name);
    let scratch = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    (scratch, name)
}

async fn drop_database(pool: &PgPool, scratch: PgPool, name: &str) {
    scratch.close().await;
    // As in `scratch_database`: the name cannot be bound.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop database {name}")))
        .execute(pool)
        .await
        .unwrap();
}

/// `dumpdata`'s records in a fixed order, for comparing two fixtures.
///
/// A time is compared as the instant it names: Django's encoder cuts a time to milliseconds
/// but writes one whose microseconds are 1 to 999 as `...:46.000Z`, which loads as a whole
/// second and is then written `...:46Z`. A round trip through Django alone (`dumpdata`,
/// `loaddata`, `dumpdata`) changes the text the same way, about one time in a thousand.
fn sorted_records(fixture: &str) -> Vec<Value> {
    let mut records: Vec<Value> = serde_json::from_str(fixture).unwrap();
    for record in &mut records {
        if let Some(fields) = record["fields"].as_object_mut() {
            for value in fields.values_mut() {
                if let Some(text) = value.as_str()
                    && let Some(whole_second) = text.strip_suffix(".000Z")
                {
                    *value = Value::String(format!("{whole_second}Z"));
                }
            }
        }
    }
    records.sort_by_key(|r| (r["model"].to_string(), r["pk"].to_string()));
    records
}

/// Django's `dumpdata` → `ledger load` → ledger answers as Django does → `ledger dump --format
/// django` → Django's `loaddata` into a fresh Django database → `dumpdata` gives the same
/// records. A fixture with one value ledger's columns would change is refused, naming the record,
/// with nothing written.
async fn djangos_fixtures_round_trip_through_ledger(pool: PgPool, release: Release) {
    let source = Django::for_test("fixtures", &pool, release);
    source.manage(&["migrate", "-v0"]).await;
    source.manage(&["fill", "--users", "30"]).await;
    let facts = source.facts(&[]).await;
    let dumped = source.manage(&["dumpdata", "myapp"]).await;
    let fixture = source.dir.join("source.json");
    std::fs::write(&fixture, &dumped).unwrap();

    // Into a ledger database. First a copy with one amount of three decimals: refused, by record.
    let (ledger_db, ledger_name) = scratch_database(&pool, "ledger").await;
    let mut conn = ledger_db.acquire().await.unwrap();
    schema::migrate(&mut conn).await.unwrap();
    let mut records: Vec<Value> = serde_json::from_str(&dumped).unwrap();
    let bad = records
        .iter()
        .position(|r| r["model"] == "myapp.transaction")
        .unwrap();
    records[bad]["fields"]["amount"] = json!("1.005");
    let bad_fixture = source.dir.join("bad.json");
    std::fs::write(&bad_fixture, serde_json::to_string(&records).unwrap()).unwrap();
    let refused = fixture::load(&mut conn, &bad_fixture, "myapp", &mut |_, _| {}).await;
    let Err(Error::InvalidInput {
        field: "file",
        reason,
    }) = &refused
    else {
        panic!("{refused:?}")
    };
    assert!(
        reason.starts_with(&format!("record {}:", bad + 1)) && reason.contains("1.005"),
        "{reason}"
    );
    let written = sqlx::query_scalar!(
        r#"
        select (select count(*) from users) + (select count(*) from accounts)
               + (select count(*) from transactions) as "n!"
        "#
    )
    .fetch_one(&ledger_db)
    .await
    .unwrap();
    assert_eq!(written, 0);

    let loaded = fixture::load(&mut conn, &fixture, "myapp", &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(loaded as usize, records.len());
    assert_eq!(
        transactions::total_with_status_across_currencies(&ledger_db, &"success".into())
            .await
            .unwrap()
            .to_string(),
        facts["success_total"]
    );
    assert!(
        transactions::reconcile(&ledger_db)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        users::count_active(&ledger_db).await.unwrap(),
        facts["live_users"].as_i64().unwrap()
    );
    // The identity sequence follows the loaded ids.
    let next = payments::insert_json(&ledger_db, &json!({"after": "load"}))
        .await
        .unwrap();
    assert_eq!(next.id.get(), facts["payments"].as_i64().unwrap() + 1);
    sqlx::query!("delete from payments where id = $1", next.id.get())
        .execute(&ledger_db)
        .await
        .unwrap();

    // Out of ledger, into a fresh Django database.
    let exported = source.dir.join("exported.json");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&exported).unwrap());
    let written = fixture::dump(&ledger_db, "myapp", &mut out, &mut |_, _| {})
        .await
        .unwrap();
    drop(out);
    assert_eq!(written as usize, records.len());
    let (target_db, target_name) = scratch_database(&pool, "target").await;
    let target = Django {
        python: source.python.clone(),
        release: source.release,
        dir: source.dir.clone(),
        url: url_of(&target_db),
        app: source.app,
    };
    target.manage(&["migrate", "-v0"]).await;
    let said = target
        .manage(&["loaddata", exported.to_str().unwrap()])
        .await;
    assert!(
        said.contains(&format!("Installed {written} object(s)")),
        "{said}"
    );
    assert_eq!(target.facts(&[]).await, facts);
    assert_eq!(
        sorted_records(&target.manage(&["dumpdata", "myapp"]).await),
        sorted_records(&dumped)
    );
    // Django's sequences were reset by loaddata: its next payment follows the loaded ones.
    target
        .manage(&[
            "shell",
            "-c",
            "from myapp.models import Payment\nPayment.objects.create(data={})",
        ])
        .await;
    std::mem::forget(target); // shares the source's directory, which the source removes

    drop(conn);
    drop_database(&pool, ledger_db, &ledger_name).await;
    drop_database(&pool, target_db, &target_name).await;
}

/// Django changes the schema of the live database (the model gains a nullable field and an
/// index: `makemigrations`, then `migrate`, as a team ships it) while ledger's pool keeps moving
/// money with keyed transfers and reading listings, on connections whose prepared statements
/// were cached before the change: no call fails, every acknowledged transfer is there once, and
/// what Django then writes into the new column reads back through ledger.
async fn django_changes_the_schema_while_ledger_moves_money_and_no_call_fails(
    pool: PgPool,
    release: Release,
) {
    use crate::ha::{Bank, Load};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let django = Django::for_test("schema", &pool, release);
    django.manage(&["migrate", "-v0"]).await;
    let mut conn = pool.acquire().await.unwrap();
    let report = adopt::apply(&mut conn, "myapp", &mut |_| {}).await.unwrap();
    django.follow_the_report(&report).await;

    // The service's pool: each connection caches its prepared statements.
    let service = ledger::Config::from_url(&django.url)
        .unwrap()
        .max_connections(4)
        .connect()
        .await
        .unwrap();
    let bank = Bank::open(&service).await;
    let load = Load::start(&service, bank, 3, "schema");
    let stopping = Arc::new(AtomicBool::new(false));
    let reader = {
        let (service, stopping) = (service.clone(), stopping.clone());
        tokio::spawn(async move {
            let (mut reads, mut errors) = (0, Vec::new());
            while !stopping.load(Ordering::Relaxed) {
                let listed = transactions::EntryQuery::new()
                    .limit(20)
                    .list_for_account(&service, bank.a())
                    .await;
                let stats = transactions::stats(&service).await;
                for result in [listed.map(|_| ()), stats.map(|_| ())] {
                    match result {
                        Ok(()) => reads += 1,
                        Err(err) => errors.push(format!("{err:?}")),
                    }
                }
            }
            (reads, errors)
        })
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    let models = django.dir.join("myapp/models.py");
    let text = std::fs::read_to_string(&models).unwrap();
    let at = text.find("class Transaction(models.Model):").unwrap();
    let (head, tail) = text.split_at(at);
    let tail = tail
        .replacen(
            "    created_at      = models.DateTimeField(auto_now_add=True)\n",
            "    created_at      = models.DateTimeField(auto_now_add=True)\n    note            = models.CharField(max_length=100, null=True)\n",
            1,
        )
        .replacen(
            "models.Index(fields=['to_account',   'created_at']),",
            "models.Index(fields=['to_account',   'created_at']),\n            models.Index(fields=['status', 'created_at'], name='transactions_status_live'),",
            1,
        );
    std::fs::write(&models, format!("{head}{tail}")).unwrap();
    let made = django.manage(&["makemigrations", "myapp"]).await;
    assert!(made.contains("Add field note to transaction"), "{made}");
    assert!(made.contains("transactions_status_live"), "{made}");
    django.manage(&["migrate", "myapp", "-v0"]).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    let seen = load.stop().await;
    stopping.store(true, Ordering::Relaxed);
    let (reads, errors) = reader.await.unwrap();
    assert_eq!(seen.refusals(), 0, "a transfer failed across the change");
    assert!(errors.is_empty(), "{errors:?}");
    assert!(reads > 0 && seen.acknowledged() > 0);
    let changed = sqlx::query_scalar!(
        r#"select (select count(*) from information_schema.columns
                   where table_name = 'transactions' and column_name = 'note')
                + (select count(*) from pg_indexes where indexname = 'transactions_status_live')
           as "n!""#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(changed, 2, "the column and the index are there");
    seen.verify(&mut conn, &bank).await;

    // Django writes into the new column; ledger reads those rows as before.
    let before = transactions::EntryQuery::new()
        .limit(5)
        .list_for_account(&service, bank.a())
        .await
        .unwrap();
    django
        .manage(&[
            "shell",
            "-c",
            "from myapp.models import Transaction\n\
             Transaction.objects.filter(type='transfer').update(note='audited')",
        ])
        .await;
    let after = transactions::EntryQuery::new()
        .limit(5)
        .list_for_account(&service, bank.a())
        .await
        .unwrap();
    assert_eq!(after, before);
    service.close().await;
}

/// The sheet's models with fields of their own (`tests/django/extended`, app label `extended`):
/// nullable fields and fields with a `db_default` pass; a `NOT NULL` field whose default lives
/// in Python only is refused by the dry run and by `apply`, naming the column and the two ways
/// out, with nothing changed. The model's `db_default` clears one (Django writes it); `apply` with
/// `default_extra_columns` sets the other's after saying so. Then ledger inserts into every table
/// and Django reads what it wrote.
async fn a_model_with_fields_of_its_own_is_adopted_only_when_ledger_can_insert_into_it(
    pool: PgPool,
    release: Release,
) {
    let django = Django::for_test("extended", &pool, release).with_app("extended");
    django.manage(&["makemigrations", "extended", "-v0"]).await;
    django.manage(&["migrate", "-v0"]).await;
    django
        .manage(&[
            "shell",
            "-c",
            "from extended.models import *\n\
             u = User.objects.create(email='ann@example.com', name='Ann')\n\
             Account.objects.create(user=u, balance='10.00')\n\
             Payment.objects.create(data={'method': 'card'})",
        ])
        .await;
    let mut conn = pool.acquire().await.unwrap();
    let refusal = |result: Result<adopt::Report, Error>| match result {
        Err(Error::NotAdoptable(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let dry = refusal(adopt::inspect(&mut conn, "extended").await);
    for needle in [
        "users.referral_code (character varying(20))",
        "accounts.branch (character varying(10))",
        "db_default",
        "--default-extra-columns",
    ] {
        assert!(dry.contains(needle), "missing {needle:?}: {dry}");
    }
    for fine in ["nickname", "tier", "opened_at", "channel", "source"] {
        assert!(!dry.contains(fine), "{fine} is fine: {dry}");
    }
    let refused = refusal(adopt::apply(&mut conn, "extended", &mut |_| {}).await);
    assert!(refused.contains("users.referral_code"), "{refused}");
    let untouched =
        sqlx::query_scalar!(r#"select to_regclass('extended_payment') is not null as "django!""#)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert!(untouched, "a refused apply changed nothing");

    // Way out one: the model gives the field a database default; Django's migration writes it.
    let models = django.dir.join("extended/models.py");
    let text = std::fs::read_to_string(&models).unwrap();
    std::fs::write(
        &models,
        text.replace(
            "referral_code = models.CharField(max_length=20, default='')",
            "referral_code = models.CharField(max_length=20, default='', db_default='')",
        ),
    )
    .unwrap();
    django.manage(&["makemigrations", "extended", "-v0"]).await;
    django.manage(&["migrate", "-v0"]).await;
    let dry = refusal(adopt::inspect(&mut conn, "extended").await);
    assert!(!dry.contains("referral_code"), "{dry}");
    assert!(dry.contains("accounts.branch"), "{dry}");

    // Way out two: apply sets the remaining default, and says so first.
    let mut said = Vec::new();
    let options = adopt::Options::new().default_extra_columns(true);
    let report = adopt::apply_with(&mut conn, "extended", &options, &mut |step| {
        said.push(step.name.clone());
    })
    .await
    .unwrap();
    assert!(report.is_adopted(), "{report}");
    assert!(
        said.first()
            .is_some_and(|s| s.contains("accounts.branch ''")),
        "{said:?}"
    );
    django.follow_the_report(&report).await;

    // ledger inserts into every table; Django reads each row back with its own fields.
    let bob = users::insert(&pool, &NewUser::new("bob@example.com", "Bob"))
        .await
        .unwrap();
    let account = accounts::open(&pool, bob.id, Some("USD")).await.unwrap();
    transactions::deposit(&mut conn, &Movement::new(account.id, dec("5.00")))
        .await
        .unwrap();
    payments::insert_json(&pool, &json!({"method": "transfer"}))
        .await
        .unwrap();
    let seen = django
        .manage(&[
            "shell",
            "-c",
            "from extended.models import *\n\
             u = User.objects.get(email='bob@example.com')\n\
             a = u.accounts.get()\n\
             print(repr(u.referral_code), u.tier, repr(a.branch), a.balance, \
                   Transaction.objects.filter(to_account=a).count(), \
                   Payment.objects.filter(data__method='transfer').get().source)",
        ])
        .await;
    // (Django 5.2's shell first says how many objects it imported.)
    assert_eq!(
        seen.trim().lines().last(),
        Some("'' basic '' 5.00 1 web"),
        "{seen}"
    );
}
