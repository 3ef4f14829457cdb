//! The JSON documents this crate writes: how deep and how large they may be.
//!
//! PostgreSQL stores any `jsonb` its parser accepts, but a document is only useful if it can be
//! read back: `serde_json` refuses documents nested more than 128 levels (`recursion limit
//! exceeded`), and a deeply nested `serde_json::Value` overflows a thread's stack when it is
//! dropped or printed. So every JSON input of this crate — payment documents one by one, in bulk
//! and by `COPY`, movement and batch metadata, and `ledger load` — is checked before anything is
//! written: at most [`MAX_DEPTH`] levels of arrays and objects, no U+0000 (which `jsonb` cannot
//! hold), and at most the size the column documents ([`crate::payments::MAX_PAYLOAD_BYTES`],
//! [`crate::transactions::MAX_METADATA_BYTES`]). The check walks the document without recursion,
//! so a caller's pathologically deep input is refused, not a stack overflow.

use std::io;

use serde_json::Value;

use crate::{Error, Result};

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
            Value::String(s) if s.contains('\0') => return Err(nul(field)),
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return Err(nul(field));
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

fn nul(field: &'static str) -> Error {
    Error::invalid(
        field,
        "must not contain the character U+0000 (jsonb cannot store it)",
    )
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
