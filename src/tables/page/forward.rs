//! The query values of the forward-only keyset listings (`payments::PaymentQuery`,
//! `transactions::EntryQuery`, `articles::ArticleQuery`, `articles::SearchQuery`): where a
//! listing resumes and how many rows it returns, with defaults, so that a knob added later breaks
//! no caller. Each is made by [`forward_query!`], and each table adds its listings as methods.

/// Rows per page when a query value is not told otherwise (the cheat sheet's `Paginator(..., 20)`).
pub const DEFAULT_PER_PAGE: i64 = 20;

/// Declares a query value: `after` (where the listing resumes: the last row of the previous
/// page) and `limit` (rows per page), both public, with `new`, `Default` and the setters, plus
/// any further fields given as `field: Type = default, "doc"`. `#[non_exhaustive]`, so that a
/// field added later breaks no caller.
macro_rules! forward_query {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            after: $after:ty, $after_doc:literal;
            $($field:ident: $ty:ty = $default:expr, $doc:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub struct $name {
            #[doc = $after_doc]
            pub after: Option<$after>,
            /// Rows per page, `1..=MAX_PER_PAGE` (checked when the listing is read, before
            /// anything is sent). Default [`DEFAULT_PER_PAGE`](crate::page::DEFAULT_PER_PAGE).
            pub limit: i64,
            $(
                #[doc = $doc]
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $name {
            /// From the start, [`DEFAULT_PER_PAGE`](crate::page::DEFAULT_PER_PAGE) rows, and
            /// every other setting at its default.
            pub const fn new() -> Self {
                Self {
                    after: None,
                    limit: $crate::tables::page::DEFAULT_PER_PAGE,
                    $($field: $default,)*
                }
            }

            /// Resume after this position (the previous page's last row), or from the start
            /// with `None`: `.after(cursor)`, `.after(next)` with an `Option`.
            #[must_use]
            pub fn after(mut self, after: impl Into<Option<$after>>) -> Self {
                self.after = after.into();
                self
            }

            /// Rows per page, `1..=MAX_PER_PAGE` (checked when the listing is read).
            #[must_use]
            pub const fn limit(mut self, limit: i64) -> Self {
                self.limit = limit;
                self
            }

            $(
                #[doc = $doc]
                #[must_use]
                pub fn $field(mut self, $field: $ty) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}
pub(crate) use forward_query;
