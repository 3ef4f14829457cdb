//! Typed kinds and statuses read whatever another client stored: an unknown name is `Other`,
//! never a failed listing or a panic.

use futures::TryStreamExt;
use ledger::Error;
use ledger::accounts::{self, AccountStatus};
use ledger::transactions::{self, EntryKind, EntryStatus, Movement};
use sqlx::PgPool;

use crate::money::funded;
use crate::support::dec;

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn an_account_status_written_by_another_client_reads_back_as_other(pool: PgPool) {
    let account = funded(&pool, "a@example.com", "USD", "10").await;
    assert_eq!(account.status, AccountStatus::Active);
    sqlx::query!(
        "update accounts set status = 'frozen' where id = $1",
        account.id.as_uuid()
    )
    .execute(&pool)
    .await
    .unwrap();

    let read = accounts::get(&pool, account.id).await.unwrap();
    assert_eq!(read.status, AccountStatus::Other("frozen".into()));
    assert_eq!(read.status, "frozen");
    let listed = accounts::list_for_user(&pool, account.user_id)
        .await
        .unwrap();
    assert_eq!(listed, vec![read.clone()]);

    let mut conn = pool.acquire().await.unwrap();
    let err = transactions::deposit(&mut conn, &Movement::new(account.id, dec("1")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AccountNotActive { status, .. } if status == "frozen"),
        "{err:?}"
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn an_entry_status_outside_the_crates_set_reads_back_as_other(pool: PgPool) {
    let account = funded(&pool, "a@example.com", "USD", "10").await;
    // Another client, with the check dropped, stored a status this crate does not know.
    sqlx::query!("alter table transactions drop constraint transactions_status_valid")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query!(
        r#"
        insert into transactions (to_account_id, amount, type, status)
        values ($1, 5, 'deposit', 'refunded')
        "#,
        account.id.as_uuid()
    )
    .execute(&pool)
    .await
    .unwrap();

    let history = transactions::EntryQuery::new()
        .limit(10)
        .list_for_account(&pool, account.id)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    let statuses: Vec<_> = history.iter().map(|e| e.status.clone()).collect();
    assert!(statuses.contains(&EntryStatus::Other("refunded".into())));
    assert!(statuses.contains(&EntryStatus::Completed));
    assert!(history.iter().all(|e| e.kind == EntryKind::Deposit));

    let streamed: Vec<_> = transactions::stream_all(&pool).try_collect().await.unwrap();
    assert_eq!(streamed.len(), 2);
    let json = serde_json::to_value(&streamed).unwrap();
    assert!(
        json.to_string().contains(r#""status":"refunded""#),
        "{json}"
    );
}
