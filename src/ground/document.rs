//! JSON documents: [`Document`], how this crate reads them, and how deep and large a document it
//! writes may be.
//!
//! **Reading.** PostgreSQL stores any `jsonb` its parser accepts (about 10,000 levels deep with
//! the default `max_stack_depth`), written by this crate or by any other client. A
//! `serde_json::Value` cannot hold all of them: `serde_json` refuses to parse one nested more
//! than 128 levels (`recursion limit exceeded`), and a `Value` nested some thousands of levels
//! overflows a thread's stack when it is dropped or printed. So the JSON columns of the rows this
//! crate returns (`transactions.metadata`, `payments.data`) are a [`Document`]: the document's
//! text as PostgreSQL sent it, checked for well-formedness without recursion. Every row, stream
//! and `ledger dump` reads any stored document, however deep; dumping writes it verbatim, and
//! loading puts it back verbatim. [`Document::to_value`] and [`Document::parse`] give the tree
//! (or a typed view) and return an error, not a crash, for a document deeper than 128 levels.
//!
//! **Writing.** Every JSON input of this crate — payment documents one by one, in bulk and by
//! `COPY`, and movement and batch metadata — is checked by [`check`] before anything is written:
//! at most [`MAX_DEPTH`] levels of arrays and objects, no U+0000 (which `jsonb` cannot hold), and
//! at most the size the column documents ([`crate::payments::MAX_PAYLOAD_BYTES`],
//! [`crate::transactions::MAX_METADATA_BYTES`]). The check walks the document without recursion,
//! so a caller's pathologically deep input is refused, not a stack overflow. `ledger load` is a
//! restore, not a new write: it puts back whatever a dump holds, at any depth and size.

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::Decode;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef, Postgres};

use crate::{Error, Result};

/// A JSON document read from the database: its text, exactly as PostgreSQL sent it.
///
/// Holding the text instead of a tree means any stored document reads back, however deep (see
/// the [module docs](self)). Compare, print and serialize it as it is; ask for the tree with
/// [`to_value`](Self::to_value) or for a typed view with [`parse`](Self::parse).
///
/// ```
/// use ledger::document::Document;
/// use serde_json::json;
///
/// let doc = Document::from_value(&json!({"brand": "Visa"}))?;
/// assert_eq!(doc.as_str(), r#"{"brand":"Visa"}"#);
/// assert_eq!(doc.to_value()?["brand"], "Visa");
/// assert_eq!(doc, json!({"brand": "Visa"}));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Document(Box<RawValue>);

impl Document {
    /// The document for `value`, as this crate would send it (compact JSON).
    ///
    /// # Errors
    /// `serde_json`'s error if `value` cannot be serialized.
    pub fn from_value(value: &Value) -> std::result::Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// Parses `text` as one JSON document, at any depth, without recursion.
    ///
    /// # Errors
    /// When `text` is not one well-formed JSON value.
    pub fn from_text(text: impl Into<String>) -> std::result::Result<Self, serde_json::Error> {
        RawValue::from_string(text.into()).map(Self)
    }

    /// The document's text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The document as a `serde_json::Value`.
    ///
    /// # Errors
    /// `serde_json`'s error for a document nested more than 128 levels ("recursion limit
    /// exceeded"): such a tree could overflow the stack of whoever drops it.
    pub fn to_value(&self) -> std::result::Result<Value, serde_json::Error> {
        serde_json::from_str(self.as_str())
    }

    /// The document as `T` (a typed view such as [`crate::payments::PaymentData`]).
    ///
    /// # Errors
    /// When the document does not have `T`'s shape, or is nested more than 128 levels.
    pub fn parse<T: serde::de::DeserializeOwned>(
        &self,
    ) -> std::result::Result<T, serde_json::Error> {
        serde_json::from_str(self.as_str())
    }
}

/// Two documents are equal when their texts are. Documents read from `jsonb` are in
/// PostgreSQL's normal form (sorted keys, one space after `:` and `,`), so equal trees read from
/// the database have equal texts.
impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Document {}

/// A document equals a `Value` when it parses to that tree.
impl PartialEq<Value> for Document {
    fn eq(&self, other: &Value) -> bool {
        self.to_value().is_ok_and(|value| value == *other)
    }
}

impl PartialEq<Document> for Value {
    fn eq(&self, other: &Document) -> bool {
        other == self
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 200;
        let text = self.as_str();
        match text.char_indices().nth(SHOWN) {
            Some((cut, _)) => write!(f, "Document({}… ({} bytes))", &text[..cut], text.len()),
            None => write!(f, "Document({text})"),
        }
    }
}

/// Read through sqlx's own `json`/`jsonb` decoding (which strips jsonb's version byte), into a
/// `RawValue`, whose parser is iterative: no recursion, at any depth.
type Stored = sqlx::types::Json<Box<RawValue>>;

impl sqlx::Type<Postgres> for Document {
    fn type_info() -> PgTypeInfo {
        <Stored as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Stored as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Document {
    fn decode(value: PgValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        let sqlx::types::Json(raw) = <Stored as Decode<Postgres>>::decode(value)?;
        Ok(Self(raw))
    }
}

/// The deepest nesting of arrays and objects accepted in a document: `{}` is depth 1,
/// `{"a": [1]}` depth 2. Half of `serde_json`'s read limit (128), so everything written reads back.
pub const MAX_DEPTH: usize = 64;

/// Checks a document about to be written to the column behind `field`: nesting at most
/// [`MAX_DEPTH`], no U+0000 in any key or string, and at most `max_bytes` once serialized.
///
/// # Errors
/// [`Error::InvalidInput`] for `field`, saying which rule the document breaks.
pub fn check(field: &'static str, document: &Value, max_bytes: usize) -> Result<()> {
    let mut pending = vec![(document, 1)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::String(s) => {
                Error::check_text(field, s)?;
                continue;
            }
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => {
                for key in map.keys() {
                    Error::check_text(field, key)?;
                }
                Box::new(map.values())
            }
            _ => continue,
        };
        if depth > MAX_DEPTH {
            return Err(Error::invalid(
                field,
                format!("is nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    // Safe to serialize now: the depth is bounded.
    let mut size = ByteCount(0);
    serde_json::to_writer(&mut size, document).map_err(|e| Error::invalid(field, e.to_string()))?;
    if size.0 > max_bytes {
        return Err(Error::invalid(
            field,
            format!("is {} bytes; at most {max_bytes} are accepted", size.0),
        ));
    }
    Ok(())
}

/// Counts what `serde_json` would write, without keeping it.
struct ByteCount(usize);

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested(depth: usize) -> Value {
        let mut value = json!(1);
        for _ in 0..depth {
            value = json!({ "a": value });
        }
        value
    }

    fn reason(result: Result<()>) -> String {
        match result {
            Err(Error::InvalidInput { field, reason }) => format!("{field}: {reason}"),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn the_depth_limit_is_exact() {
        assert!(check("data", &nested(MAX_DEPTH), 1 << 20).is_ok());
        assert_eq!(
            reason(check("data", &nested(MAX_DEPTH + 1), 1 << 20)),
            "data: is nested more than 64 levels deep"
        );
        assert!(check("data", &json!([[[]]]), 100).is_ok());
    }

    #[test]
    fn a_very_deep_input_is_refused_without_recursing() {
        // Built as a chain of arrays, then checked and dropped without recursion.
        let mut value = Value::Array(vec![]);
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        assert!(reason(check("metadata", &value, usize::MAX)).contains("more than 64 levels"));
        // Dismantle it iteratively: dropping it whole would recurse 100,000 frames deep.
        let mut next = Some(value);
        while let Some(Value::Array(mut items)) = next {
            next = items.pop();
        }
    }

    #[test]
    fn nul_and_size_are_refused() {
        assert!(reason(check("data", &json!({"a": "x\u{0}y"}), 100)).contains("U+0000"));
        assert!(reason(check("data", &json!({"k\u{0}": 1}), 100)).contains("U+0000"));
        assert_eq!(
            reason(check("data", &json!({"a": "xxxxxxxx"}), 10)),
            "data: is 16 bytes; at most 10 are accepted"
        );
        assert!(check("data", &json!({"a": "xxxxxxxx"}), 16).is_ok());
    }
}
