//! What the bulk writers share: options, validation by index, and matching returned rows to
//! their inputs.
//!
//! Every bulk writer validates every item before it sends anything (a bad item is
//! [`Error::InvalidItem`] naming its index), generates the new rows' UUIDs in Rust, sends chunks
//! of at most [`BulkOptions::chunk_size`] rows as one `insert ... select ... from unnest(...)`
//! each, all inside one transaction (a savepoint inside the caller's), and matches the rows that
//! `returning` gives back to their inputs by id — `returning` promises no order.

use std::collections::HashMap;

use crate::{Error, Result};

/// Rows per statement unless the caller says otherwise.
pub const DEFAULT_CHUNK_SIZE: usize = 5_000;
/// Most rows per statement (the arrays of one statement are held in memory on both sides).
pub const MAX_CHUNK_SIZE: usize = 10_000;

/// What to do with a row that violates a unique constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Fail the whole batch (the default): nothing is written.
    #[default]
    Fail,
    /// Skip the row, as Django's `bulk_create(..., ignore_conflicts=True)`; the outcome counts
    /// the skipped rows.
    Skip,
}

/// How a bulk insert runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkOptions {
    /// Rows per statement, 1 to [`MAX_CHUNK_SIZE`].
    pub chunk_size: usize,
    /// Conflicting rows: fail or skip.
    pub on_conflict: OnConflict,
}

impl Default for BulkOptions {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            on_conflict: OnConflict::Fail,
        }
    }
}

impl BulkOptions {
    /// Skip conflicting rows instead of failing.
    pub fn skip_conflicts(mut self) -> Self {
        self.on_conflict = OnConflict::Skip;
        self
    }

    /// Sets the chunk size.
    pub fn chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    pub(crate) fn checked_chunk_size(&self) -> Result<usize> {
        if (1..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            Ok(self.chunk_size)
        } else {
            Err(Error::invalid(
                "chunk_size",
                format!("must be between 1 and {MAX_CHUNK_SIZE}"),
            ))
        }
    }
}

/// The result of a bulk insert.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkInserted<T> {
    /// One entry per input, in input order: the created row, or `None` where the row was skipped
    /// as a conflict.
    pub rows: Vec<Option<T>>,
    /// How many rows were skipped (always 0 with [`OnConflict::Fail`]).
    pub skipped: usize,
}

impl<T> BulkInserted<T> {
    /// The created rows, in input order.
    pub fn created(&self) -> impl Iterator<Item = &T> {
        self.rows.iter().flatten()
    }
}

/// Runs `check` on every item; the first failure becomes [`Error::InvalidItem`] with its index.
pub(crate) fn validate_all<T>(items: &[T], check: impl Fn(&T) -> Result<()>) -> Result<()> {
    for (index, item) in items.iter().enumerate() {
        check(item).map_err(|source| Error::InvalidItem {
            index,
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// Fails on the second occurrence of a key within one batch (so a conflict inside the input is
/// reported by index, not as a database error).
pub(crate) fn reject_duplicates<T, K: std::hash::Hash + Eq>(
    items: &[T],
    field: &'static str,
    key: impl Fn(&T) -> K,
) -> Result<()> {
    let mut seen = HashMap::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if let Some(first) = seen.insert(key(item), index) {
            return Err(Error::InvalidItem {
                index,
                source: Box::new(Error::invalid(
                    field,
                    format!("repeats item {first} of the same batch"),
                )),
            });
        }
    }
    Ok(())
}

/// Puts `rows` in the order of `ids` (the ids generated for the inputs); ids with no row were
/// skipped.
pub(crate) fn align<T, K: std::hash::Hash + Eq>(
    ids: &[K],
    rows: Vec<T>,
    id_of: impl Fn(&T) -> K,
) -> BulkInserted<T> {
    let mut by_id: HashMap<K, T> = rows.into_iter().map(|r| (id_of(&r), r)).collect();
    let rows: Vec<Option<T>> = ids.iter().map(|id| by_id.remove(id)).collect();
    let skipped = rows.iter().filter(|r| r.is_none()).count();
    BulkInserted { rows, skipped }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn rows_are_aligned_to_inputs_whatever_order_they_return_in() {
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        let returned = vec![ids[3], ids[0], ids[2]]; // ids[1] was skipped
        let out = align(&ids, returned, |id| *id);
        assert_eq!(
            out.rows,
            vec![Some(ids[0]), None, Some(ids[2]), Some(ids[3])]
        );
        assert_eq!(out.skipped, 1);
    }

    #[test]
    fn the_first_bad_item_is_named_by_index() {
        let items = [1, 2, -3, -4];
        let err = validate_all(&items, |n| {
            if *n > 0 {
                Ok(())
            } else {
                Err(Error::invalid("n", "negative"))
            }
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidItem { index: 2, .. }),
            "{err:?}"
        );
        let dup = reject_duplicates(&["a", "b", "a"], "email", |s| *s).unwrap_err();
        assert!(matches!(dup, Error::InvalidItem { index: 2, .. }));
    }

    #[test]
    fn chunk_sizes_are_bounded() {
        assert!(BulkOptions::default().checked_chunk_size().is_ok());
        assert!(
            BulkOptions::default()
                .chunk_size(0)
                .checked_chunk_size()
                .is_err()
        );
        assert!(
            BulkOptions::default()
                .chunk_size(MAX_CHUNK_SIZE + 1)
                .checked_chunk_size()
                .is_err()
        );
    }
}
