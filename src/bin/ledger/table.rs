//! Plain-text tables for the tour, aligned by display width (a Hangul or CJK character takes two
//! columns of a terminal, a combining accent none).

use std::fmt::Display;
use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

/// How many rows a table prints before it summarises the rest.
const MAX_ROWS: usize = 12;

/// A table under construction.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    /// Prints the table indented by four spaces, at most [`MAX_ROWS`] rows.
    pub fn print(&self, out: &mut impl Write) -> io::Result<()> {
        let width = |i: usize| {
            self.rows
                .iter()
                .take(MAX_ROWS)
                .map(|r| r.get(i).map_or(0, |c| c.width()))
                .chain([self.headers[i].width()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.width().min(*w))))
                .collect();
            format!("    {}", padded.join(" | ").trim_end())
        };
        writeln!(out, "{}", line(&self.headers))?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(out, "    {}", rule.join("-+-"))?;
        for row in self.rows.iter().take(MAX_ROWS) {
            writeln!(out, "{}", line(row))?;
        }
        if self.rows.len() > MAX_ROWS {
            writeln!(out, "    ... and {} more rows", self.rows.len() - MAX_ROWS)?;
        }
        if self.rows.is_empty() {
            writeln!(out, "    (no rows)")?;
        }
        Ok(())
    }
}

/// The first 8 characters of an id: enough to tell rows apart on screen.
pub fn short(id: impl Display) -> String {
    id.to_string().chars().take(8).collect()
}

/// `Some(x)` as `x`, `None` as `-`.
pub fn opt(value: Option<impl Display>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_display_width_not_characters() {
        let mut t = Table::new(&["name", "x"]);
        t.row(vec!["김민준".into(), "1".into()]);
        t.row(vec!["Ana".into(), "2".into()]);
        let mut out = Vec::new();
        t.print(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let columns: Vec<usize> = text
            .lines()
            .filter_map(|line| line.find(" | ").map(|at| line[..at].width()))
            .collect();
        assert!(columns.len() >= 3, "{text}");
        assert!(columns.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}
