//! Typed ids: a `UserId` cannot be passed where an `AccountId` is expected.
//!
//! The seed's models give users, accounts and ledger entries UUID ids. Payments and articles have
//! no explicit primary key in Django, which gives them its default `BigAutoField`: a `bigint`
//! identity the server assigns, so their ids ([`PaymentId`], [`ArticleId`]) wrap an `i64`.
//!
//! Every table's id newtype lives here, at the ground of the crate (each table module re-exports
//! its own), so that the error type and any module can name an id without importing a table.

use std::fmt;

/// A string that is not an id, given where one was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIdError {
    text: String,
    expected: &'static str,
}

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not {}: {:?}", self.expected, self.text)
    }
}

impl std::error::Error for ParseIdError {}

/// Declares a `#[sqlx(transparent)]` UUID newtype.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new random (v4) id.
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }

            /// The bare UUID.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                uuid::Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| ParseIdError {
                        text: s.to_owned(),
                        expected: "a UUID",
                    })
            }
        }
    };
}

/// Declares a `#[sqlx(transparent)]` newtype over a server-assigned `bigint` identity.
macro_rules! serial_id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The bare number.
            pub fn get(&self) -> i64 {
                self.0
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                s.parse::<i64>().map(Self).map_err(|_| ParseIdError {
                    text: s.to_owned(),
                    expected: "an integer id",
                })
            }
        }
    };
}

id_type! {
    /// The id of a [`User`](crate::users::User).
    UserId
}

id_type! {
    /// The id of an [`Account`](crate::accounts::Account).
    AccountId
}

id_type! {
    /// The id of a [`LedgerEntry`](crate::transactions::LedgerEntry).
    EntryId
}

serial_id_type! {
    /// The id of a [`Payment`](crate::payments::Payment): Django's default `BigAutoField`.
    PaymentId
}

serial_id_type! {
    /// The id of an [`Article`](crate::articles::Article): Django's default `BigAutoField`.
    ArticleId
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The `(table, column)` pairs that `sqlx.toml` maps to an id type.
    fn overridden_columns(config: &str) -> BTreeSet<(String, String)> {
        let mut table = None;
        let mut found = BTreeSet::new();
        for line in config.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("[macros.table-overrides.'") {
                table = name.strip_suffix("']").map(str::to_owned);
            } else if let (Some(table), Some((column, target))) = (
                &table,
                line.strip_prefix('\'')
                    .and_then(|rest| rest.split_once("' = ")),
            ) && target.contains("::ledger::ids::")
            {
                found.insert((table.clone(), column.to_owned()));
            }
        }
        found
    }

    /// Every UUID column that a query macro decodes (as recorded in `.sqlx/`) comes out as a
    /// typed id: either its table column is mapped in `sqlx.toml`, or the query names the type
    /// (`as "x: AccountId"`) because the column has no table origin (a union or an expression).
    #[test]
    fn every_uuid_column_a_query_decodes_is_a_typed_id() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = std::fs::read_to_string(root.join("sqlx.toml")).unwrap();
        let overridden = overridden_columns(&config);
        assert!(overridden.len() >= 8, "{overridden:?}");
        let mut untyped = Vec::new();
        let mut checked = 0;
        for file in std::fs::read_dir(root.join(".sqlx")).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let query: serde_json::Value = serde_json::from_str(&text).unwrap();
            for column in query["describe"]["columns"].as_array().unwrap() {
                if column["type_info"] != "Uuid" {
                    continue;
                }
                checked += 1;
                let name = column["name"].as_str().unwrap();
                let origin = &column["origin"]["Table"];
                let mapped = origin["table"]
                    .as_str()
                    .zip(origin["name"].as_str())
                    .is_some_and(|(t, c)| overridden.contains(&(t.to_owned(), c.to_owned())));
                if !mapped && !name.contains(": ") {
                    untyped.push(format!("{name} in {}", query["query"]));
                }
            }
        }
        assert!(checked > 100, "only {checked} UUID columns found in .sqlx/");
        assert!(
            untyped.is_empty(),
            "UUID columns decoded untyped: {untyped:#?}"
        );
    }
}
