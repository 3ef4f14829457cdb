//! What an adopted schema holds, as data: ledger's check constraints, foreign keys, indexes and
//! defaults, the seed's columns, the columns ledger adds, and the posting function. The steps in
//! `plan` are made from these.

/// Migration 0015: `ledger_post`, which every movement calls.
pub(super) const POST_FUNCTION: &str =
    include_str!("../../../migrations/0015_post_function.up.sql");

/// A rule ledger enforces with a check constraint.
pub(super) struct Check {
    pub(super) table: &'static str,
    pub(super) name: &'static str,
    pub(super) expression: &'static str,
    pub(super) requires: &'static str,
}

pub(super) const CHECKS: &[Check] = &[
    Check {
        table: "users",
        name: "users_email_format",
        expression: r"email ~ '^[^@[:space:]]+@[^@[:space:]]+$'",
        requires: "one @, no white space",
    },
    Check {
        table: "accounts",
        name: "balance_non_negative",
        expression: "balance >= 0",
        requires: "balance >= 0 (the seed's)",
    },
    Check {
        table: "accounts",
        name: "accounts_currency_format",
        expression: "currency ~ '^[A-Z]{3}$'",
        requires: "three uppercase letters",
    },
    Check {
        table: "transactions",
        name: "positive_amount",
        expression: "amount > 0",
        requires: "amount > 0 (the seed's)",
    },
    Check {
        table: "transactions",
        name: "transactions_type_valid",
        expression: "type in ('transfer', 'deposit', 'withdrawal')",
        requires: "transfer, deposit or withdrawal",
    },
    Check {
        table: "transactions",
        name: "transactions_status_valid",
        expression: "status in ('pending', 'completed', 'failed', 'success')",
        requires: "pending, completed, failed or success",
    },
    Check {
        table: "transactions",
        name: "transactions_accounts_match_type",
        expression: "case type \
            when 'transfer' then from_account_id is not null and to_account_id is not null \
                and from_account_id <> to_account_id \
            when 'deposit' then from_account_id is null and to_account_id is not null \
            when 'withdrawal' then from_account_id is not null and to_account_id is null \
            else true end",
        requires: "a transfer has two different accounts, a deposit only `to`, a withdrawal \
                   only `from`",
    },
    Check {
        table: "transactions",
        name: "transactions_metadata_object",
        expression: "jsonb_typeof(metadata) = 'object'",
        requires: "metadata is a JSON object",
    },
    Check {
        table: "payments",
        name: "payments_data_object",
        expression: "jsonb_typeof(data) = 'object'",
        requires: "data is a JSON object",
    },
    Check {
        table: "articles",
        name: "articles_title_not_blank",
        expression: "title ~ '[^[:space:]]'",
        requires: "a title that is not blank",
    },
];

/// A foreign key ledger names and restricts (Django's are `deferrable initially deferred`, named
/// with a hash, and enforce `PROTECT` in Python).
pub(super) struct ForeignKey {
    pub(super) table: &'static str,
    pub(super) name: &'static str,
    pub(super) column: &'static str,
    pub(super) references: &'static str,
}

pub(super) const FOREIGN_KEYS: &[ForeignKey] = &[
    ForeignKey {
        table: "accounts",
        name: "accounts_user_id_fkey",
        column: "user_id",
        references: "users",
    },
    ForeignKey {
        table: "transactions",
        name: "transactions_from_account_id_fkey",
        column: "from_account_id",
        references: "accounts",
    },
    ForeignKey {
        table: "transactions",
        name: "transactions_to_account_id_fkey",
        column: "to_account_id",
        references: "accounts",
    },
];

/// An index of ledger's: built unless a valid index with the same definition exists.
pub(super) struct Index {
    pub(super) table: &'static str,
    pub(super) name: &'static str,
    /// `pg_get_indexdef` from `USING` on.
    pub(super) definition: &'static str,
    pub(super) unique: bool,
}

pub(super) const INDEXES: &[Index] = &[
    Index {
        table: "users",
        name: "users_live_created_at_id_idx",
        definition: "USING btree (created_at DESC, id DESC) WHERE (deleted_at IS NULL)",
        unique: false,
    },
    Index {
        table: "users",
        name: "users_live_name_id_idx",
        definition: "USING btree (name, id) WHERE (deleted_at IS NULL)",
        unique: false,
    },
    Index {
        table: "users",
        name: "users_live_name_pattern_idx",
        definition: "USING btree (name varchar_pattern_ops) WHERE (deleted_at IS NULL)",
        unique: false,
    },
    Index {
        table: "accounts",
        name: "accounts_user_id_idx",
        definition: "USING btree (user_id)",
        unique: false,
    },
    Index {
        table: "accounts",
        name: "accounts_balance_idx",
        definition: "USING btree (balance)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_from_account_id_created_at_idx",
        definition: "USING btree (from_account_id, created_at)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_to_account_id_created_at_idx",
        definition: "USING btree (to_account_id, created_at)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_created_at_id_idx",
        definition: "USING btree (created_at, id)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_metadata_gin_idx",
        definition: "USING gin (metadata)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_idempotency_key_key",
        definition: "USING btree (idempotency_key)",
        unique: true,
    },
    Index {
        table: "idempotency_keys",
        name: "idempotency_keys_created_at_idx",
        definition: "USING btree (created_at)",
        unique: false,
    },
    Index {
        table: "payments",
        name: "payments_data_gin_idx",
        definition: "USING gin (data)",
        unique: false,
    },
    Index {
        table: "articles",
        name: "articles_search_gin_idx",
        definition: "USING gin (search)",
        unique: false,
    },
    Index {
        table: "articles",
        name: "articles_created_at_id_idx",
        definition: "USING btree (created_at DESC, id DESC)",
        unique: false,
    },
];

/// The column defaults ledger's inserts rely on (Django sends every value itself).
pub(super) const DEFAULTS: &[(&str, &str, &str)] = &[
    ("users", "id", "gen_random_uuid()"),
    ("users", "created_at", "now()"),
    ("accounts", "id", "gen_random_uuid()"),
    ("accounts", "balance", "0"),
    ("accounts", "currency", "'USD'"),
    ("accounts", "status", "'active'"),
    ("transactions", "id", "gen_random_uuid()"),
    ("transactions", "status", "'pending'"),
    ("transactions", "metadata", "'{}'::jsonb"),
    ("transactions", "created_at", "now()"),
    ("payments", "data", "'{}'::jsonb"),
    ("articles", "content", "''"),
    ("articles", "created_at", "now()"),
];

/// The columns of the seed's models as Django 4.1+ makes them on PostgreSQL: `(model table,
/// column, type, not null)`. `payment` and `article` are prefixed with the app label.
pub(super) const SEED_COLUMNS: &[(&str, &str, &str, bool)] = &[
    ("users", "id", "uuid", true),
    ("users", "email", "character varying(254)", true),
    ("users", "name", "character varying(100)", true),
    ("users", "created_at", "timestamp with time zone", true),
    ("users", "deleted_at", "timestamp with time zone", false),
    ("accounts", "id", "uuid", true),
    ("accounts", "user_id", "uuid", true),
    ("accounts", "balance", "numeric(15,2)", true),
    ("accounts", "currency", "character varying(3)", true),
    ("accounts", "status", "character varying(20)", true),
    ("transactions", "id", "uuid", true),
    ("transactions", "from_account_id", "uuid", false),
    ("transactions", "to_account_id", "uuid", false),
    ("transactions", "amount", "numeric(15,2)", true),
    ("transactions", "type", "character varying(20)", true),
    ("transactions", "status", "character varying(20)", true),
    ("transactions", "metadata", "jsonb", true),
    (
        "transactions",
        "created_at",
        "timestamp with time zone",
        true,
    ),
    ("payment", "id", "bigint", true),
    ("payment", "data", "jsonb", true),
    ("article", "id", "bigint", true),
    ("article", "title", "character varying(200)", true),
    ("article", "content", "text", true),
];

/// Columns ledger adds beyond the seed's fields (`payments.created_at`, `articles.created_at`:
/// the sheet's `Payment` and `Article` have none). Missing is fine (a step adds them, with
/// `now()` for the rows there); present, a model's own must have this type, as
/// [`SEED_COLUMNS`]'.
pub(super) const ADDITIONS: &[(&str, &str, &str, bool)] = &[
    ("payment", "created_at", "timestamp with time zone", true),
    ("article", "created_at", "timestamp with time zone", true),
];
