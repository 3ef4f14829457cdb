//! A small encoder for PostgreSQL's `COPY ... FROM STDIN` text format.
//!
//! sqlx offers only raw `COPY` bytes, so the loaders build them here. The text format is one
//! line per row, columns separated by tabs, `\N` for NULL; inside a value, backslash, tab,
//! newline and carriage return are written as `\\`, `\t`, `\n` and `\r` (PostgreSQL manual,
//! "COPY", File Formats). Everything else, any UTF-8 included, passes through as is. Values are
//! written in the forms PostgreSQL parses back exactly: UUIDs hyphenated, decimals in plain
//! notation, JSON as its serialized text.

use std::fmt::Display;

/// Rows encoded in `COPY` text format, ready to send.
#[derive(Debug, Default)]
pub struct CopyText {
    buf: Vec<u8>,
    at_row_start: bool,
    rows: usize,
}

impl CopyText {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            at_row_start: true,
            rows: 0,
        }
    }

    fn separate(&mut self) {
        if !self.at_row_start {
            self.buf.push(b'\t');
        }
        self.at_row_start = false;
    }

    /// A text value, escaped.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.separate();
        for byte in value.bytes() {
            match byte {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                _ => self.buf.push(byte),
            }
        }
        self
    }

    /// A value whose `Display` form PostgreSQL parses (UUIDs, decimals, numbers), escaped all
    /// the same.
    pub fn display(&mut self, value: impl Display) -> &mut Self {
        self.text(&value.to_string())
    }

    /// NULL.
    pub fn null(&mut self) -> &mut Self {
        self.separate();
        self.buf.extend_from_slice(b"\\N");
        self
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.at_row_start = true;
        self.rows += 1;
    }

    /// Rows ended so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes buffered.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes the buffered bytes, leaving the buffer empty.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_are_escaped_and_nulls_marked() {
        let mut c = CopyText::new();
        c.text("a\tb")
            .text("line\nbreak\r")
            .text("back\\slash")
            .null()
            .text("");
        c.end_row();
        c.text("ünï😀")
            .display(rust_decimal::Decimal::new(-123_456, 2));
        c.end_row();
        assert_eq!(
            String::from_utf8(c.take()).unwrap(),
            "a\\tb\tline\\nbreak\\r\tback\\\\slash\t\\N\t\nünï😀\t-1234.56\n"
        );
        assert_eq!(c.rows(), 2);
        assert!(c.is_empty());
    }

    #[test]
    fn a_literal_backslash_n_is_not_a_null() {
        let mut c = CopyText::new();
        c.text("\\N");
        c.end_row();
        assert_eq!(c.take(), b"\\\\N\n");
    }
}
