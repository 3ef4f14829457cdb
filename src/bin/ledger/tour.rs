//! `ledger tour`: the cheat sheet, section by section, run for real.
//!
//! Everything happens inside one transaction that is rolled back at the end: the tour creates its
//! own demo rows, runs every operation on them (and on whatever the database already holds), and
//! leaves no trace. Each step prints the seed's Django line, the ledger call, and the typed
//! result as a table.

use std::io::Write;

use chrono::Utc;
use ledger::accounts::{self, Account, AccountFilter};
use ledger::articles::{self, Language, NewArticle};
use ledger::bulk::BulkOptions;
use ledger::payments::{self, PaymentData, Shipping};
use ledger::transactions::{self, Movement, Transfer};
use ledger::users::{self, NewUser, User, UserFilter, UserOrder};
use ledger::{Config, atomic, schema};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{Acquire, PgConnection};

use crate::table::{Table, opt, short};

type AnyResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The demo users: non-ASCII names on purpose.
const PEOPLE: [(&str, &str); 8] = [
    ("ana@tour.example", "Ana García"),
    ("bjorn@tour.example", "Björn Ångström"),
    ("chloe@tour.example", "Chloé Dubois"),
    ("dmitri@tour.example", "Дмитрий Иванов"),
    ("eunji@tour.example", "김은지"),
    ("fatima@tour.example", "Fátima Núñez"),
    ("pct@tour.example", "100% Real_Name"),
    ("trial@tour.example", "Trial Tester"),
];

/// `(owner index, currency, deposit, status)` for each demo account.
const ACCOUNTS: [(usize, &str, &str, &str); 10] = [
    (0, "USD", "1500.00", "active"),
    (0, "EUR", "320.50", "active"),
    (1, "USD", "250.00", "active"),
    (2, "USD", "99.99", "vip"),
    (3, "USD", "500.00", "active"),
    (4, "USD", "250.00", "active"),
    (5, "USD", "75.25", "banned"),
    (6, "USD", "10.00", "active"),
    (7, "USD", "0", "trial"),
    (7, "USD", "0", "trial"),
];

/// Demo articles for the search section.
const ARTICLES: [(&str, &str); 4] = [
    (
        "Postgres performance tuning",
        "Indexes, vacuum and the query planner: a practical guide to a faster database.",
    ),
    (
        "Notes from a database conference",
        "Talks on replication, and one on postgres performance under heavy write load.",
    ),
    (
        "Choosing a database",
        "Relational or document store? Transactions and constraints decide it for a ledger.",
    ),
    ("Gardening", "Tomatoes need sun, water and patience."),
];

/// `(from account index, to account index, amount)`: transfers, and withdrawals without a `to`.
const MOVES: [(Option<usize>, Option<usize>, &str); 6] = [
    (Some(0), Some(2), "200.00"),
    (Some(4), Some(5), "120.00"),
    (Some(0), None, "60.00"),
    (Some(2), Some(0), "15.75"),
    (Some(5), None, "30.00"),
    (Some(0), Some(4), "99.99"),
];

fn heading(out: &mut impl Write, title: &str) -> AnyResult {
    writeln!(out, "\n== {title} ==")?;
    Ok(())
}

fn step(out: &mut impl Write, django: &str, ledger: &str) -> AnyResult {
    writeln!(out, "\n  django: {django}")?;
    writeln!(out, "  ledger: {ledger}")?;
    Ok(())
}

fn user_table(out: &mut impl Write, users: &[User]) -> AnyResult {
    let mut t = Table::new(&["id", "email", "name", "deleted_at"]);
    for u in users {
        t.row(vec![
            short(u.id),
            u.email.clone(),
            u.name.clone(),
            opt(u.deleted_at.map(|d| d.format("%F %T").to_string())),
        ]);
    }
    Ok(t.print(out)?)
}

fn account_table(out: &mut impl Write, accounts: &[Account]) -> AnyResult {
    let mut t = Table::new(&["id", "owner", "balance", "currency", "status"]);
    for a in accounts {
        t.row(vec![
            short(a.id),
            short(a.user_id),
            a.balance.to_string(),
            a.currency.clone(),
            a.status.to_string(),
        ]);
    }
    Ok(t.print(out)?)
}

fn value(out: &mut impl Write, text: impl std::fmt::Display) -> AnyResult {
    writeln!(out, "    -> {text}")?;
    Ok(())
}

/// Runs the tour against `config`'s database.
pub async fn run(config: &Config, out: &mut impl Write) -> AnyResult {
    writeln!(
        out,
        "ledger tour: the Django + PostgreSQL cheat sheet, in Rust"
    )?;
    heading(out, "Setup")?;
    writeln!(out, "  database: {config}")?;
    writeln!(
        out,
        "  settings: connect timeout {:?} (the seed's connect_timeout), connection max age {:?} (CONN_MAX_AGE)",
        ledger::config::CONNECT_TIMEOUT,
        ledger::config::CONNECTION_MAX_LIFETIME
    )?;
    let mut conn = config.connect_one().await?;

    heading(out, "Migrations")?;
    step(
        out,
        "python manage.py migrate",
        "schema::migrate(&mut conn)",
    )?;
    schema::migrate(&mut conn).await?;
    step(
        out,
        "python manage.py showmigrations",
        "schema::status(&mut conn)",
    )?;
    let mut t = Table::new(&["version", "migration", "applied"]);
    for m in schema::status(&mut conn).await? {
        t.row(vec![
            format!("{:04}", m.version),
            m.description,
            if m.applied { "[X]" } else { "[ ]" }.into(),
        ]);
    }
    t.print(out)?;

    // Everything below runs in one transaction that is rolled back at the end.
    let mut tx = conn.begin().await?;
    let (people, accounts_made) = demo_data(&mut tx).await?;
    writeln!(
        out,
        "\n  (demo data inside a transaction that will be rolled back: {} users, {} accounts)",
        people.len(),
        accounts_made.len()
    )?;
    crud(&mut tx, out).await?;
    filtering(&mut tx, out).await?;
    ordering(&mut tx, out).await?;
    aggregations(&mut tx, out).await?;
    joins(&mut tx, out).await?;
    money(&mut tx, out, &accounts_made).await?;
    raw_sql(&mut tx, out).await?;
    jsonb(&mut tx, out).await?;
    windows(&mut tx, out).await?;
    full_text(&mut tx, out).await?;
    performance(&mut tx, out).await?;
    tx.rollback().await?;
    writeln!(out, "\n(rolled back: the database is as the tour found it)")?;
    Ok(())
}

async fn demo_data(conn: &mut PgConnection) -> AnyResult<(Vec<User>, Vec<Account>)> {
    let mut people = Vec::new();
    for (email, name) in PEOPLE {
        people.push(users::insert(&mut *conn, &NewUser::new(email, name)).await?);
    }
    let mut made = Vec::new();
    for (owner, currency, deposit, status) in ACCOUNTS {
        let account = accounts::open(&mut *conn, people[owner].id, Some(currency)).await?;
        let amount: Decimal = deposit.parse()?;
        if amount > Decimal::ZERO {
            let movement = Movement::new(account.id, amount).metadata(json!({"source": "tour"}));
            transactions::deposit(&mut *conn, &movement).await?;
        }
        made.push(accounts::set_status(&mut *conn, account.id, status).await?);
    }
    // A little traffic, so that the windows and reports have something to show.
    for (from, to, amount) in MOVES {
        let amount: Decimal = amount.parse()?;
        let entry = match (from, to) {
            (Some(from), Some(to)) => {
                let request = Transfer::new(made[from].id, made[to].id, amount);
                transactions::transfer(&mut *conn, &request).await?
            }
            (Some(from), None) => {
                transactions::withdraw(&mut *conn, &Movement::new(made[from].id, amount)).await?
            }
            _ => continue,
        };
        tracing::debug!(entry = %entry.id, "tour movement");
    }
    let mut current = Vec::with_capacity(made.len());
    for account in made {
        current.push(accounts::get(&mut *conn, account.id).await?);
    }
    Ok((people, current))
}

async fn crud(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Basic CRUD")?;
    step(
        out,
        "user = User.objects.create(email='ana@example.com', name='Ana')",
        r#"users::insert(db, &NewUser::new("ana@example.com", "Ana"))"#,
    )?;
    let ana = users::insert(&mut *conn, &NewUser::new("ana@example.com", "Ana")).await?;
    user_table(out, std::slice::from_ref(&ana))?;

    step(
        out,
        "User.objects.get(id='some-uuid')",
        "users::get(db, id)",
    )?;
    user_table(out, &[users::get(&mut *conn, ana.id).await?])?;
    let missing = users::get(&mut *conn, users::UserId::new()).await;
    value(
        out,
        format!(
            "unknown id: Err({})",
            missing.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    )?;

    step(
        out,
        "User.objects.filter(deleted_at__isnull=True)",
        "users::list_active(db)",
    )?;
    user_table(out, &users::list_active(&mut *conn).await?)?;

    step(
        out,
        "User.objects.filter(email='ana@example.com').first()",
        r#"users::find_by_email(db, "ana@example.com")"#,
    )?;
    let found = users::find_by_email(&mut *conn, "ana@example.com").await?;
    value(
        out,
        format!("Some({})", found.map(|u| u.name).unwrap_or_default()),
    )?;
    let none = users::find_by_email(&mut *conn, "nobody@example.com").await?;
    value(out, format!("nobody@example.com: {none:?}"))?;

    step(
        out,
        "User.objects.filter(id=user.id).update(name='Ana García')",
        r#"users::update_name(db, id, "Ana García")"#,
    )?;
    user_table(
        out,
        &[users::update_name(&mut *conn, ana.id, "Ana García").await?],
    )?;

    step(
        out,
        "user.name = 'Ana G.'; user.save()",
        "users::save(db, &user)",
    )?;
    let mut edited = users::get(&mut *conn, ana.id).await?;
    edited.name = "Ana G.".into();
    user_table(out, &[users::save(&mut *conn, &edited).await?])?;

    step(
        out,
        "User.objects.filter(id=user.id).update(deleted_at=timezone.now())",
        "users::soft_delete(db, id)  (idempotent; users::restore undoes it)",
    )?;
    let at = users::soft_delete(&mut *conn, ana.id).await?;
    value(out, format!("deleted_at = {}", at.format("%F %T%.3f UTC")))?;

    step(
        out,
        "User.objects.filter(id=user.id).delete()",
        "users::delete(db, id)",
    )?;
    users::delete(&mut *conn, ana.id).await?;
    value(out, "Ok(()): gone for good")?;
    let owner = users::find_by_email(&mut *conn, "bjorn@tour.example").await?;
    if let Some(owner) = owner {
        let mut inner = conn.begin().await?;
        let protected = users::delete(&mut *inner, owner.id).await;
        drop(inner);
        value(
            out,
            format!(
                "a user with accounts: {} (on_delete=PROTECT)",
                protected.err().map(|e| e.to_string()).unwrap_or_default()
            ),
        )?;
    }
    Ok(())
}

async fn filtering(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Filtering")?;
    step(
        out,
        "User.objects.filter(name='Ana García')",
        r#"users::list_by_name(db, "Ana García")"#,
    )?;
    user_table(out, &users::list_by_name(&mut *conn, "Ana García").await?)?;
    step(
        out,
        "User.objects.filter(name__icontains='GARCÍA')",
        r#"users::list_name_contains(db, "GARCÍA")"#,
    )?;
    user_table(out, &users::list_name_contains(&mut *conn, "GARCÍA").await?)?;
    step(
        out,
        "User.objects.filter(name__icontains='%')",
        r#"users::list_name_contains(db, "%")  (wildcards match themselves)"#,
    )?;
    user_table(out, &users::list_name_contains(&mut *conn, "%").await?)?;
    step(
        out,
        "User.objects.filter(name__startswith='An')",
        r#"users::list_name_starts_with(db, "An")"#,
    )?;
    user_table(out, &users::list_name_starts_with(&mut *conn, "An").await?)?;
    step(
        out,
        "User.objects.filter(created_at__date=today)",
        r#"users::list_created_on(db, today, "UTC")  (a half-open range in an explicit zone)"#,
    )?;
    let today = Utc::now().date_naive();
    value(
        out,
        format!(
            "{} users created today (UTC)",
            users::list_created_on(&mut *conn, today, "UTC")
                .await?
                .len()
        ),
    )?;
    step(
        out,
        "User.objects.exclude(deleted_at__isnull=False)",
        "users::list_active(db)",
    )?;
    value(
        out,
        format!("{} live users", users::list_active(&mut *conn).await?.len()),
    )?;

    writeln!(
        out,
        "\n  (balance and status are Account fields: the seed's User has neither)"
    )?;
    step(
        out,
        "User.objects.filter(balance__gte=100)",
        "accounts::list_balance_at_least(db, Decimal::from(100))",
    )?;
    account_table(
        out,
        &accounts::list_balance_at_least(&mut *conn, Decimal::from(100)).await?,
    )?;
    step(
        out,
        "User.objects.filter(balance__range=(100, 500))",
        "accounts::list_balance_between(db, 100, 500)",
    )?;
    account_table(
        out,
        &accounts::list_balance_between(&mut *conn, Decimal::from(100), Decimal::from(500)).await?,
    )?;
    step(
        out,
        "User.objects.filter(status__in=['active','vip'])",
        r#"accounts::list_status_in(db, &["active", "vip"])"#,
    )?;
    account_table(
        out,
        &accounts::list_status_in(&mut *conn, &["active", "vip"]).await?,
    )?;
    step(
        out,
        "User.objects.filter(balance__gte=100, status='active')",
        r#"accounts::list_balance_at_least_and_status(db, 100, "active")"#,
    )?;
    account_table(
        out,
        &accounts::list_balance_at_least_and_status(&mut *conn, Decimal::from(100), "active")
            .await?,
    )?;
    step(
        out,
        "User.objects.filter(Q(balance__gte=100) | Q(status='vip'))",
        r#"accounts::list_balance_at_least_or_status(db, 100, "vip")"#,
    )?;
    account_table(
        out,
        &accounts::list_balance_at_least_or_status(&mut *conn, Decimal::from(100), "vip").await?,
    )?;
    step(
        out,
        "User.objects.filter(~Q(status='banned'))",
        r#"accounts::list_status_not(db, "banned")"#,
    )?;
    account_table(out, &accounts::list_status_not(&mut *conn, "banned").await?)?;
    step(
        out,
        "Account.objects.filter(**criteria)  (criteria chosen at run time)",
        "accounts::filter(db, &AccountFilter { min_balance, status_not, .. })",
    )?;
    let criteria = AccountFilter {
        min_balance: Some(Decimal::from(50)),
        status_not: Some("banned".into()),
        currency: Some("USD".into()),
        ..Default::default()
    };
    account_table(out, &accounts::filter(&mut *conn, &criteria).await?)?;
    let by_name = UserFilter {
        name_contains: Some("ö".into()),
        created_on: Some(today),
        ..Default::default()
    };
    step(
        out,
        "User.objects.filter(name__icontains='ö', created_at__date=today)",
        "users::filter(db, &UserFilter { .. })",
    )?;
    user_table(out, &users::filter(&mut *conn, &by_name).await?)?;
    Ok(())
}

async fn ordering(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Ordering, Limiting, Pagination")?;
    step(
        out,
        "User.objects.order_by('name')[:10]",
        "users::list_slice(db, UserOrder::NameAsc, 0..10)",
    )?;
    user_table(
        out,
        &users::list_slice(&mut *conn, UserOrder::NameAsc, 0..10).await?,
    )?;
    step(
        out,
        "User.objects.order_by('-created_at')[2:5]",
        "users::list_slice(db, UserOrder::NewestFirst, 2..5)",
    )?;
    user_table(
        out,
        &users::list_slice(&mut *conn, UserOrder::NewestFirst, 2..5).await?,
    )?;
    step(
        out,
        "Paginator(User.objects.filter(deleted_at__isnull=True), 3).get_page('2')",
        r#"users::get_page(&mut conn, UserOrder::NameAsc, 3, "2")"#,
    )?;
    let page = users::get_page(&mut *conn, UserOrder::NameAsc, 3, "2").await?;
    value(
        out,
        format!(
            "page {} of {} ({} users): has_previous={}, has_next={}",
            page.spec.number(),
            page.spec.paginator().num_pages(),
            page.spec.paginator().count(),
            page.spec.has_previous(),
            page.spec.has_next()
        ),
    )?;
    user_table(out, &page.items)?;
    let clamped = users::get_page(&mut *conn, UserOrder::NameAsc, 3, "not-a-number").await?;
    value(
        out,
        format!("get_page('not-a-number') -> page {}", clamped.spec.number()),
    )?;
    let strict = users::page(&mut *conn, UserOrder::NameAsc, 3, 99).await;
    value(
        out,
        format!(
            "page(99) -> Err({})",
            strict.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    )?;
    step(
        out,
        "(keyset pagination: no OFFSET)",
        "users::list_keyset(db, cursor, 3)",
    )?;
    let first = users::list_keyset(&mut *conn, None, 3).await?;
    let token = first.next.map(|c| c.encode()).unwrap_or_default();
    value(
        out,
        format!(
            "first page: {} users, next cursor token {token}",
            first.items.len()
        ),
    )?;
    Ok(())
}

async fn money(conn: &mut PgConnection, out: &mut impl Write, made: &[Account]) -> AnyResult {
    heading(out, "Transactions (Atomic)")?;
    // Two active USD demo accounts, the richer one paying.
    let mut usable: Vec<&Account> = made
        .iter()
        .filter(|a| a.status == "active" && a.currency == "USD")
        .collect();
    usable.sort_by_key(|a| std::cmp::Reverse(a.balance));
    let [from, to] = [usable[0].id, usable[1].id];
    step(
        out,
        "transfer_funds(from_account_id, to_account_id, Decimal('125.50'))",
        "transactions::transfer(&mut conn, &Transfer::new(from, to, Decimal::new(12_550, 2)))  (locks both rows in id order)",
    )?;
    let request =
        Transfer::new(from, to, Decimal::new(12_550, 2)).idempotency_key("tour-transfer-1");
    let entry = transactions::transfer(&mut *conn, &request).await?;
    let mut t = Table::new(&["id", "type", "from", "to", "amount", "status"]);
    t.row(vec![
        short(entry.id),
        entry.kind.to_string(),
        opt(entry.from_account_id.map(short)),
        opt(entry.to_account_id.map(short)),
        entry.amount.to_string(),
        entry.status.to_string(),
    ]);
    t.print(out)?;
    let again = transactions::transfer(&mut *conn, &request).await?;
    value(
        out,
        format!(
            "same idempotency key again -> same entry: {}",
            again.id == entry.id
        ),
    )?;
    let overdraft = Transfer::new(to, from, Decimal::from(1_000_000));
    let refused = transactions::transfer(&mut *conn, &overdraft).await;
    value(
        out,
        format!(
            "overdraft -> Err({})",
            refused.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    )?;
    account_table(
        out,
        &[
            accounts::get(&mut *conn, from).await?,
            accounts::get(&mut *conn, to).await?,
        ],
    )?;

    heading(out, "Savepoints")?;
    step(
        out,
        "with atomic(): create user; with atomic(): Account.objects.create(user=user, balance=-100)",
        "atomic::create_user_then_try_account(&mut conn, &new_user, Decimal::from(-100))",
    )?;
    let outcome = atomic::create_user_then_try_account(
        &mut *conn,
        &NewUser::new("test@tour.example", "Test"),
        Decimal::from(-100),
    )
    .await?;
    value(
        out,
        format!(
            "inner block: Err({}); user {} still created",
            outcome
                .account
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            outcome.user.email
        ),
    )?;
    Ok(())
}

async fn aggregations(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Aggregations")?;
    step(
        out,
        "Transaction.objects.filter(status='success').aggregate(total=Sum('amount'))",
        "transactions::total_completed(db)  ('success' is spelled 'completed')",
    )?;
    value(out, transactions::total_completed(&mut *conn).await?)?;
    step(
        out,
        "Transaction.objects.aggregate(total=Sum, count=Count, average=Avg, maximum=Max)",
        "transactions::stats(db)",
    )?;
    let s = transactions::stats(&mut *conn).await?;
    let mut t = Table::new(&["total", "count", "average", "maximum", "minimum"]);
    t.row(vec![
        s.total.to_string(),
        s.count.to_string(),
        opt(s.average),
        opt(s.maximum),
        opt(s.minimum),
    ]);
    t.print(out)?;
    step(
        out,
        "Transaction.objects.annotate(month=TruncMonth('created_at')).values('month').annotate(revenue=Sum, count=Count)",
        r#"transactions::monthly_revenue(db, "UTC")"#,
    )?;
    let mut t = Table::new(&["month", "revenue", "count"]);
    for m in transactions::monthly_revenue(&mut *conn, "UTC").await? {
        t.row(vec![
            m.month.format("%Y-%m").to_string(),
            m.revenue.to_string(),
            m.count.to_string(),
        ]);
    }
    t.print(out)?;
    Ok(())
}

async fn joins(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "JOINs")?;
    step(
        out,
        "Transaction.objects.select_related('from_account', 'to_account')",
        "transactions::list_with_accounts(db, None, 5)  (one query, left joins)",
    )?;
    let mut t = Table::new(&["type", "amount", "from balance", "to balance"]);
    for row in transactions::list_with_accounts(&mut *conn, None, 5).await? {
        t.row(vec![
            row.entry.kind.to_string(),
            row.entry.amount.to_string(),
            opt(row.from_account.map(|a| a.balance)),
            opt(row.to_account.map(|a| a.balance)),
        ]);
    }
    t.print(out)?;
    step(
        out,
        "User.objects.prefetch_related('accounts')",
        "users::list_with_accounts(&mut conn)  (two queries, however many users)",
    )?;
    let mut t = Table::new(&["user", "accounts"]);
    for u in users::list_with_accounts(&mut *conn).await? {
        let list: Vec<String> = u
            .accounts
            .iter()
            .map(|a| format!("{} {}", a.balance, a.currency))
            .collect();
        t.row(vec![u.user.name, list.join(", ")]);
    }
    t.print(out)?;
    Ok(())
}

async fn windows(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Window Functions")?;
    step(
        out,
        "Transaction.objects.annotate(running_total=Window(Sum('amount'), partition_by=[F('from_account__user')], order_by=F('created_at').asc()))",
        "transactions::running_totals(db)",
    )?;
    let mut t = Table::new(&["entry", "user", "amount", "running_total"]);
    for r in transactions::running_totals(&mut *conn).await? {
        t.row(vec![
            short(r.id),
            short(r.user_id),
            r.amount.to_string(),
            r.running_total.to_string(),
        ]);
    }
    t.print(out)?;
    step(
        out,
        "Account.objects.annotate(rank=Window(Rank(), order_by=F('balance').desc())).values('user__name', 'balance', 'rank')",
        "accounts::rank_by_balance(db)",
    )?;
    let mut t = Table::new(&["rank", "user", "balance"]);
    for r in accounts::rank_by_balance(&mut *conn).await? {
        t.row(vec![r.rank.to_string(), r.user_name, r.balance.to_string()]);
    }
    t.print(out)?;
    Ok(())
}

async fn raw_sql(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Raw SQL")?;
    step(
        out,
        "cursor.execute('SELECT u.name, SUM(t.amount) AS total_spent ... LIMIT %s', [10])",
        "transactions::top_spenders(db, 30, 10)",
    )?;
    let mut t = Table::new(&["name", "total_spent"]);
    for s in transactions::top_spenders(&mut *conn, 30, 10).await? {
        t.row(vec![s.name, s.total_spent.to_string()]);
    }
    t.print(out)?;
    step(
        out,
        "User.objects.raw('SELECT * FROM users WHERE balance > %s', [1000])",
        "users::list_with_balance_over(db, Decimal::from(1000))  (balance lives on accounts)",
    )?;
    user_table(
        out,
        &users::list_with_balance_over(&mut *conn, Decimal::from(1000)).await?,
    )?;
    step(out, "(no Django equivalent)", "transactions::reconcile(db)")?;
    let off = transactions::reconcile(&mut *conn).await?;
    value(
        out,
        format!("{} accounts disagree with their ledger", off.len()),
    )?;
    Ok(())
}

fn payment_table(out: &mut impl Write, rows: &[payments::Payment]) -> AnyResult {
    let mut t = Table::new(&["id", "data"]);
    for p in rows {
        t.row(vec![short(p.id), p.data.to_string()]);
    }
    Ok(t.print(out)?)
}

async fn jsonb(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "JSONB")?;
    step(
        out,
        "Payment.objects.create(data={'method': 'credit_card', 'last4': '4242', 'brand': 'Visa'})",
        "payments::insert(db, &PaymentData { method, last4, brand, .. })",
    )?;
    let card = PaymentData {
        method: Some("credit_card".into()),
        last4: Some("4242".into()),
        brand: Some("Visa".into()),
        amount: Some(Decimal::new(12_050, 2)),
        shipping: Some(Shipping {
            country: Some("US".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    payment_table(out, &[payments::insert(&mut *conn, &card).await?])?;
    for data in [
        json!({"method": "credit_card", "brand": "Mastercard", "amount": 9, "discount": 2, "shipping": {"country": "FR"}}),
        json!({"method": "bank_transfer", "amount": 1000, "reference": "INV-77"}),
        json!({"method": "credit_card", "brand": "Visa", "amount": "150"}),
    ] {
        payments::insert_json(&mut *conn, &data).await?;
    }
    step(
        out,
        "Payment.objects.filter(data__method='credit_card')",
        r#"payments::list_by_method(db, "credit_card", None, 10)  (data @> {...}, GIN)"#,
    )?;
    payment_table(
        out,
        &payments::list_by_method(&mut *conn, "credit_card", None, 10).await?,
    )?;
    step(
        out,
        "Payment.objects.filter(data__brand='Visa')",
        r#"payments::list_by_brand(db, "Visa", None, 10)"#,
    )?;
    payment_table(
        out,
        &payments::list_by_brand(&mut *conn, "Visa", None, 10).await?,
    )?;
    step(
        out,
        "Payment.objects.filter(data__amount__gte=100)",
        "payments::list_amount_at_least(db, Decimal::from(100), None, 10)  (numbers compare as numbers: 9 < 100; \"150\" is a string)",
    )?;
    payment_table(
        out,
        &payments::list_amount_at_least(&mut *conn, Decimal::from(100), None, 10).await?,
    )?;
    step(
        out,
        "Payment.objects.filter(data__has_key='discount')",
        r#"payments::list_with_key(db, "discount", None, 10)"#,
    )?;
    payment_table(
        out,
        &payments::list_with_key(&mut *conn, "discount", None, 10).await?,
    )?;
    step(
        out,
        "Payment.objects.filter(data__shipping__country='US')",
        r#"payments::list_by_shipping_country(db, "US", None, 10)"#,
    )?;
    payment_table(
        out,
        &payments::list_by_shipping_country(&mut *conn, "US", None, 10).await?,
    )?;
    step(
        out,
        "Transaction.objects.filter(metadata__source='tour')",
        r#"transactions::list_metadata_containing(db, &json!({"source": "tour"}), None, 3)"#,
    )?;
    let entries =
        transactions::list_metadata_containing(&mut *conn, &json!({"source": "tour"}), None, 3)
            .await?;
    value(
        out,
        format!("{} entries (first 3 of the demo deposits)", entries.len()),
    )?;
    Ok(())
}

async fn full_text(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Full-Text Search")?;
    for (title, content) in ARTICLES {
        articles::insert(&mut *conn, &NewArticle::new(title, content)).await?;
    }
    step(
        out,
        "Article.objects.annotate(search=SearchVector('title', 'content')).filter(search='database')",
        r#"articles::search_titles(db, "database", Language::English, None, 10)  (stored tsvector, GIN)"#,
    )?;
    let mut t = Table::new(&["title"]);
    for a in articles::search_titles(&mut *conn, "database", Language::English, None, 10).await? {
        t.row(vec![a.title]);
    }
    t.print(out)?;
    step(
        out,
        "Article.objects.annotate(rank=SearchRank(vector, SearchQuery('postgres performance'))).filter(rank__gte=0.1).order_by('-rank')",
        r#"articles::search(db, "postgres performance", Language::English, 0.1, None, 10)"#,
    )?;
    let mut t = Table::new(&["rank", "title", "snippet"]);
    for hit in articles::search(
        &mut *conn,
        "postgres performance",
        Language::English,
        articles::DEFAULT_MIN_RANK,
        None,
        10,
    )
    .await?
    {
        t.row(vec![format!("{:.3}", hit.rank), hit.title, hit.snippet]);
    }
    t.print(out)?;
    let hostile = "'; drop table articles; -- \"unclosed & | !";
    let safe = articles::search(&mut *conn, hostile, Language::English, 0.0, None, 10).await?;
    value(
        out,
        format!(
            "hostile input {hostile:?} -> Ok({} hits), never an SQL error",
            safe.len()
        ),
    )?;
    Ok(())
}

async fn performance(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Performance Tips")?;
    step(
        out,
        "User.objects.values('id', 'email')",
        "users::list_id_email(db)",
    )?;
    let mut t = Table::new(&["id", "email"]);
    for p in users::list_id_email(&mut *conn).await? {
        t.row(vec![short(p.id), p.email]);
    }
    t.print(out)?;
    step(
        out,
        "User.objects.values_list('id', flat=True)",
        "users::list_ids(db)",
    )?;
    let ids: Vec<String> = users::list_ids(&mut *conn)
        .await?
        .into_iter()
        .map(short)
        .collect();
    value(out, format!("[{}]", ids.join(", ")))?;
    step(
        out,
        "User.objects.filter(email='x@x.com').exists()",
        r#"users::exists_with_email(db, "x@x.com")"#,
    )?;
    value(out, users::exists_with_email(&mut *conn, "x@x.com").await?)?;
    step(
        out,
        "User.objects.filter(status='trial').update(status='expired')",
        "accounts::expire_trials(db)  (on accounts)",
    )?;
    value(
        out,
        format!(
            "{} rows updated",
            accounts::expire_trials(&mut *conn).await?
        ),
    )?;
    step(
        out,
        "User.objects.defer('large_text_field', 'avatar_data')",
        "articles::list_summaries(db, None, 10)  (User has no heavy fields; articles.content is one)",
    )?;
    value(
        out,
        format!(
            "{} article summaries",
            ledger::articles::list_summaries(&mut *conn, None, 10)
                .await?
                .len()
        ),
    )?;
    step(
        out,
        "User.objects.filter(active=True).count()",
        "users::count_active(db)",
    )?;
    value(out, users::count_active(&mut *conn).await?)?;
    step(
        out,
        "User.objects.bulk_create([User(email='user1@example.com', name='User 1'), ...])",
        "users::insert_many(&mut conn, &[NewUser::new(..), ..], BulkOptions::default())  (one insert ... from unnest)",
    )?;
    let batch: Vec<NewUser> = (1..=3)
        .map(|i| NewUser::new(format!("user{i}@tour.example"), format!("User {i}")))
        .collect();
    let created = users::insert_many(&mut *conn, &batch, BulkOptions::default()).await?;
    value(
        out,
        format!(
            "{} users created in one statement",
            created.rows.iter().flatten().count()
        ),
    )?;
    step(
        out,
        "for user in User.objects.filter(active=True).iterator(chunk_size=1000)",
        "users::list_keyset(db, cursor, 1000) until next is None  (keyset chunks; transactions::stream_all streams rows)",
    )?;
    let (mut seen, mut chunks, mut cursor) = (0, 0, None);
    loop {
        let chunk = users::list_keyset(&mut *conn, cursor.as_ref(), 1_000).await?;
        seen += chunk.items.len();
        chunks += 1;
        match chunk.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    value(out, format!("{seen} live users in {chunks} chunk(s)"))?;
    Ok(())
}
