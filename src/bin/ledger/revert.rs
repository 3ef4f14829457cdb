//! `ledger migrate --target N`: what reverting would drop, said before anything is dropped.

use ledger::{Config, MIGRATOR, schema};
use sqlx::PgConnection;

use crate::AnyResult;

/// The applied migrations above `target`, newest first, each with what its down script drops
/// (`drop table users`, ...).
pub(crate) async fn plan(conn: &mut PgConnection, target: i64) -> AnyResult<Vec<String>> {
    let status = schema::status(conn).await?;
    let mut lines = Vec::new();
    for m in status
        .iter()
        .rev()
        .filter(|m| m.applied && m.version > target)
    {
        let down = MIGRATOR
            .iter()
            .find(|d| d.version == m.version && d.migration_type.is_down_migration())
            .map(|d| drops(d.sql.as_str()))
            .unwrap_or_default();
        let what = if down.is_empty() {
            String::new()
        } else {
            format!(": {}", down.join("; "))
        };
        lines.push(format!("{:04}_{}{what}", m.version, m.description));
    }
    Ok(lines)
}

/// The `drop ...` statements of a down script, lowercased and on one line each.
fn drops(sql: &str) -> Vec<String> {
    sql.split(';')
        .map(|statement| {
            statement
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join(" ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|statement| {
            let lower = statement.to_lowercase();
            lower.starts_with("drop ") || lower.contains(" drop ")
        })
        .collect()
}

/// Refuses a revert that would drop something unless `yes`: prints on stderr each migration it
/// would revert and what its down script drops, then one line of refusal.
pub(crate) async fn confirm(
    config: &Config,
    conn: &mut PgConnection,
    target: i64,
    yes: bool,
) -> AnyResult {
    let plan = plan(conn, target).await?;
    if plan.is_empty() || yes {
        return Ok(());
    }
    eprintln!(
        "reverting {} to {target:04} would revert, newest first:",
        config.target()
    );
    for line in &plan {
        eprintln!("  {line}");
    }
    Err(format!(
        "migrate --target {target} drops what is listed above, with the rows in it: pass --yes \
         to revert"
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drops_of_a_down_script_are_read_whole() {
        let sql = "-- Reverts 0009.\ndrop index if exists a_idx;\nalter table users\n    drop column \
                   search;\nupdate users set x = 1;\n";
        assert_eq!(
            drops(sql),
            [
                "drop index if exists a_idx",
                "alter table users drop column search"
            ]
        );
    }
}
