//! [`PaymentQuery`]: where a payments listing resumes and how many rows it returns, as one value
//! with defaults, and the listings it reads: containment, key existence, numeric comparison.
//! Re-exported by [`payments`](super).

use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgExecutor;

use super::{Payment, check_payload};
use crate::tables::page::{self, Cursor, forward_query};
use crate::{Error, Result};

forward_query! {
    /// How payments are listed: from where ([`after`](Self::after), a [`Cursor`] on
    /// `(created_at, id)`) and how many ([`limit`](Self::limit)). Build it from
    /// [`PaymentQuery::new`] (from the start, [`DEFAULT_PER_PAGE`](crate::page::DEFAULT_PER_PAGE)
    /// rows) and the setters, then read a listing with one of its methods.
    ///
    /// `#[non_exhaustive]`: a setting added later has a default, so code written today keeps
    /// compiling.
    ///
    /// ```no_run
    /// # async fn demo(pool: ledger::PgPool) -> ledger::Result<()> {
    /// use ledger::page::Cursor;
    /// use ledger::payments::PaymentQuery;
    ///
    /// // Django: Payment.objects.filter(data__method='credit_card')[:50], then the next 50.
    /// let cards = PaymentQuery::new().limit(50);
    /// let first = cards.list_by_method(&pool, "credit_card").await?;
    /// if let Some(last) = first.last() {
    ///     let next = cards.after(Cursor::after(last.created_at, last.id.get()));
    ///     let second = next.list_by_method(&pool, "credit_card").await?;
    /// #   let _ = second;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub struct PaymentQuery {
        after: Cursor<i64>, "Where the listing resumes: the previous page's last row (`None`, the default: from the start).";
    }
}

impl PaymentQuery {
    /// Payments whose document contains `fragment` (every key and value of it, at any depth):
    /// the building block of the key-value and nested queries below.
    ///
    /// Django: `Payment.objects.filter(data__contains={'shipping': {'country': 'US'}})`
    ///
    /// SQL: `where data @> $1 order by created_at, id limit $2` (GIN index `payments_data_gin_idx`);
    /// with `after`, only the rows past it: `(created_at, id) > ($3, $4)`.
    ///
    /// Read to the end by passing [`PaymentQuery::after`] the last row of each page; so do the functions
    /// below that build on it.
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`): `payments_data_gin_idx`, then a sort of the
    /// matches.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a fragment that is not an object, a bad limit, or a `Previous`
    /// cursor.
    pub async fn list_containing(
        &self,
        db: impl PgExecutor<'_>,
        fragment: &Value,
    ) -> Result<Vec<Payment>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.payments.list_containing",
            "SELECT",
            "payments"
        );
        crate::ground::telemetry::traced(op, self.containing(db, fragment)).await
    }

    /// Payments made with this method.
    ///
    /// Django: `Payment.objects.filter(data__method='credit_card')`
    ///
    /// SQL: `where data @> '{"method": $1}'` (GIN index).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit.
    pub async fn list_by_method(
        &self,
        db: impl PgExecutor<'_>,
        method: &str,
    ) -> Result<Vec<Payment>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.payments.list_by_method",
            "SELECT",
            "payments"
        );
        crate::ground::telemetry::traced(op, async move {
            Error::check_text("method", method)?;
            self.containing(db, &json!({ "method": method })).await
        })
        .await
    }

    /// Payments with this card brand.
    ///
    /// Django: `Payment.objects.filter(data__brand='Visa')`
    ///
    /// SQL: `where data @> '{"brand": $1}'` (GIN index).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit.
    pub async fn list_by_brand(
        &self,
        db: impl PgExecutor<'_>,
        brand: &str,
    ) -> Result<Vec<Payment>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.payments.list_by_brand",
            "SELECT",
            "payments"
        );
        crate::ground::telemetry::traced(op, async move {
            Error::check_text("brand", brand)?;
            self.containing(db, &json!({ "brand": brand })).await
        })
        .await
    }

    /// Payments shipping to this country (a nested key).
    ///
    /// Django: `Payment.objects.filter(data__shipping__country='US')`
    ///
    /// SQL: `where data @> '{"shipping": {"country": $1}}'` (GIN index).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit.
    pub async fn list_by_shipping_country(
        &self,
        db: impl PgExecutor<'_>,
        country: &str,
    ) -> Result<Vec<Payment>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.payments.list_by_shipping_country",
            "SELECT",
            "payments"
        );
        crate::ground::telemetry::traced(op, async move {
            Error::check_text("country", country)?;
            self.containing(db, &json!({ "shipping": { "country": country } }))
                .await
        })
        .await
    }

    /// Payments whose document has this top-level key.
    ///
    /// Django: `Payment.objects.filter(data__has_key='discount')`
    ///
    /// SQL: `where data ? $1 order by created_at, id limit $2` (GIN index).
    ///
    /// Read to the end by passing [`PaymentQuery::after`] the last row of each page.
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`): `payments_data_gin_idx` (`?` is a
    /// `jsonb_ops` operator), then a sort of the matches.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit or a `Previous` cursor.
    pub async fn list_with_key(&self, db: impl PgExecutor<'_>, key: &str) -> Result<Vec<Payment>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.payments.list_with_key",
            "SELECT",
            "payments"
        );
        crate::ground::telemetry::traced(op, async move {
            Error::check_text("key", key)?;
            let limit = page::check_limit(self.limit)?;
            let (after_at, after_id) = page::resume_after(self.after.as_ref())?;
            Ok(sqlx::query_as!(
                Payment,
                r#"
            select id, data, created_at
            from payments
            where data ? $1
              and (created_at, id) > (coalesce($3::timestamptz, '-infinity'),
                                      coalesce($4::bigint, -9223372036854775808))
            order by created_at, id
            limit $2
            "#,
                key,
                limit,
                after_at,
                after_id
            )
            .fetch_all(db)
            .await?)
        })
        .await
    }

    /// Payments whose `amount` is a JSON number of at least `min`.
    ///
    /// Django: `Payment.objects.filter(data__amount__gte=100)`
    ///
    /// SQL: `where jsonb_path_exists(data, '$.amount ? (@ >= $min)', {"min": $1})`: a numeric
    /// comparison (9 < 100), and an `amount` that is a string, missing or null matches nothing
    /// rather than failing the query.
    ///
    /// Read to the end by passing [`PaymentQuery::after`] the last row of each page.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit or a `Previous` cursor.
    pub async fn list_amount_at_least(
        &self,
        db: impl PgExecutor<'_>,
        min: Decimal,
    ) -> Result<Vec<Payment>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.payments.list_amount_at_least",
            "SELECT",
            "payments"
        );
        crate::ground::telemetry::traced(op, async move {
            let limit = page::check_limit(self.limit)?;
            let (after_at, after_id) = page::resume_after(self.after.as_ref())?;
            Ok(sqlx::query_as!(
                Payment,
                r#"
            select id, data, created_at
            from payments
            where jsonb_path_exists(data, '$.amount ? (@ >= $min)', jsonb_build_object('min', $1::numeric))
              and (created_at, id) > (coalesce($3::timestamptz, '-infinity'),
                                      coalesce($4::bigint, -9223372036854775808))
            order by created_at, id
            limit $2
                "#,
                min,
                limit,
                after_at,
                after_id
            )
            .fetch_all(db)
            .await?)
        })
        .await
    }

    /// [`list_containing`](Self::list_containing) without a span of its own: the listings that
    /// build on it open theirs, one span per call.
    async fn containing(&self, db: impl PgExecutor<'_>, fragment: &Value) -> Result<Vec<Payment>> {
        check_payload(fragment)?;
        let limit = page::check_limit(self.limit)?;
        let (after_at, after_id) = page::resume_after(self.after.as_ref())?;
        Ok(sqlx::query_as!(
            Payment,
            r#"
        select id, data, created_at
        from payments
        where data @> $1
          and (created_at, id) > (coalesce($3::timestamptz, '-infinity'),
                                  coalesce($4::bigint, -9223372036854775808))
        order by created_at, id
        limit $2
        "#,
            fragment,
            limit,
            after_at,
            after_id
        )
        .fetch_all(db)
        .await?)
    }
}
