//! Typed values of the text columns that hold a set of names: a ledger entry's type and status,
//! an account's status.
//!
//! Each is an enum of the names this crate writes, plus `Other(String)` for anything another
//! client (Django, psql, an older version) stored: a read never fails or panics on an unknown
//! name, and writing the value back stores the same text. Each maps to PostgreSQL `text` /
//! `varchar`, serializes as its name, and compares equal to its name as a `&str`.

/// Declares a text-backed enum with an `Other(String)` fallback.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A name this crate does not write, kept as stored.
            Other(String),
        }

        impl $name {
            /// The name as stored.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                match $name::from(text.as_str()) {
                    $name::Other(_) => $name::Other(text),
                    known => known,
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                match value {
                    $name::Other(text) => text,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ok($name::from(text))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map($name::from)
            }
        }

        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                <&str as sqlx::Decode<sqlx::Postgres>>::decode(value).map($name::from)
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_enum! {
    /// `transactions.type`.
    EntryKind {
        /// Money between two accounts.
        Transfer = "transfer",
        /// Money into one account.
        Deposit = "deposit",
        /// Money out of one account.
        Withdrawal = "withdrawal",
    }
}

text_enum! {
    /// `transactions.status`. The seed's aggregate asks for `'success'`, which its own code never
    /// writes and Django data holds: both `Completed` and `Success` mean applied.
    EntryStatus {
        /// Not yet applied (the column's default; this crate never writes it).
        Pending = "pending",
        /// Applied: every movement this crate makes.
        Completed = "completed",
        /// Refused after the fact (this crate never writes it).
        Failed = "failed",
        /// Applied, in Django's spelling (the seed's aggregate; this crate never writes it).
        Success = "success",
    }
}

text_enum! {
    /// `accounts.status`: free text of at most 20 characters in the schema; these are the names
    /// the cheat sheet uses. Money moves only in and out of `Active` accounts.
    AccountStatus {
        /// Open for movements (the default).
        Active = "active",
        /// The seed's premium accounts.
        Vip = "vip",
        /// The seed's trial accounts (`expire_trials` moves them to `Expired`).
        Trial = "trial",
        /// The seed's expired trials.
        Expired = "expired",
        /// The seed's banned accounts.
        Banned = "banned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_map_to_variants_and_unknown_ones_are_kept() {
        assert_eq!(EntryKind::from("deposit"), EntryKind::Deposit);
        assert_eq!(EntryStatus::from("success"), EntryStatus::Success);
        assert_eq!(
            EntryStatus::from("refunded"),
            EntryStatus::Other("refunded".into())
        );
        assert_eq!(EntryStatus::Other("refunded".into()).as_str(), "refunded");
        assert_eq!(String::from(AccountStatus::Vip), "vip");
        assert_eq!(AccountStatus::from("").to_string(), "");
        assert!(AccountStatus::Active == "active");
    }

    #[test]
    fn serde_writes_and_reads_the_name() {
        let json = serde_json::to_string(&EntryKind::Withdrawal).unwrap();
        assert_eq!(json, r#""withdrawal""#);
        let back: EntryStatus = serde_json::from_str(r#""refunded""#).unwrap();
        assert_eq!(back, EntryStatus::Other("refunded".into()));
    }
}
