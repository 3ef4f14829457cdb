//! How long a call may wait: for a pooled connection, on a lock, on a statement, and how long a
//! session may sit idle inside a transaction.

use std::time::Duration;

use crate::{Error, Result};

/// The pool's timeouts and the server's, as one value with defaults a money service can live
/// with ([`Timeouts::default`]). Set it with [`Config::with_timeouts`](super::Config::with_timeouts),
/// or through `DB_*` variables and the URL's `options` (see [`Config::from_lookup`](super::Config::from_lookup)).
///
/// The server's three (`statement_timeout`, `lock_timeout`,
/// `idle_in_transaction_session_timeout`) are sent as libpq's startup `options`
/// (`-c lock_timeout=10000ms`), so they hold for every statement of every connection the
/// config opens, inside or outside a transaction. Through a transaction pooler
/// ([`Config::transaction_pooler`](super::Config::transaction_pooler)) they are not sent:
/// PgBouncer 1.18 refuses a startup `options` parameter. Set them on the service's role there
/// (`alter role svc set lock_timeout = '10s'`), which applies to PgBouncer's server connections.
///
/// ```
/// use std::time::Duration;
/// use ledger::config::Timeouts;
///
/// let timeouts = Timeouts::default()
///     .lock(Some(Duration::from_secs(2)))
///     .statement(Some(Duration::from_secs(30)));
/// let config = ledger::Config::from_url("postgres://app@db/bank")?.with_timeouts(timeouts);
/// assert_eq!(config.timeouts().lock, Some(Duration::from_secs(2)));
/// # Ok::<(), ledger::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// How long a call waits for a pooled connection, connecting included (the seed's
    /// `connect_timeout: 5`). Past it: [`Transient::PoolTimedOut`](crate::Transient::PoolTimedOut),
    /// nothing sent. `DB_ACQUIRE_TIMEOUT`. Default 5 s.
    pub acquire: Duration,
    /// A pooled connection idle this long is closed. `DB_IDLE_TIMEOUT` (`0` for never). Default
    /// 10 minutes (sqlx's).
    pub idle: Option<Duration>,
    /// A pooled connection this old is closed when it comes back (the seed's `CONN_MAX_AGE:
    /// 60`): a pool re-balances across servers and sheds server-side memory. `DB_MAX_LIFETIME`
    /// (`0` for never). Default 60 s.
    pub max_lifetime: Option<Duration>,
    /// The server cancels a statement running this long: [`Transient::Cancelled`](crate::Transient::Cancelled),
    /// the unit of work rolled back. `DB_STATEMENT_TIMEOUT`, or `statement_timeout` in the URL's
    /// `options`. Default none: ledger's own long statements (a `COPY` of a table, an index
    /// built by a migration, a dump) legitimately run for minutes, and a limit for the service's
    /// requests is the service's to choose.
    pub statement: Option<Duration>,
    /// A statement waiting this long for a lock another transaction holds gives up:
    /// [`Transient::LockTimeout`](crate::Transient::LockTimeout), the unit of work rolled back,
    /// nothing written. `DB_LOCK_TIMEOUT`, or `lock_timeout` in the URL's `options`. Default 10 s:
    /// far above any wait ordinary contention makes (a poster flush of 512 movements holds its
    /// accounts for tens of milliseconds), and short enough that a client stuck inside a
    /// transaction on a hot account fails its waiters with a typed, known outcome instead of
    /// piling up the whole pool behind it. A migration waiting behind a long query gives up
    /// instead of queueing every other client behind its lock.
    pub lock: Option<Duration>,
    /// The server ends a session that sits idle inside a transaction this long (its locks are
    /// released; the session's next call fails as
    /// [`Transient::ConnectionLost`](crate::Transient::ConnectionLost)).
    /// `DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT`, or `idle_in_transaction_session_timeout` in the
    /// URL's `options`. Default 60 s: ledger's units of work are never idle in their
    /// transactions for more than a round trip, and a caller's transaction that waits a minute on
    /// something else holds row locks that money movements need. ledger's own streams and dumps,
    /// whose transactions wait on their reader by design, turn it off for their transaction
    /// alone (`set local`), so a slow reader keeps its stream.
    pub idle_in_transaction: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            acquire: super::CONNECT_TIMEOUT,
            idle: Some(Duration::from_secs(600)),
            max_lifetime: Some(super::CONNECTION_MAX_LIFETIME),
            statement: None,
            lock: Some(Duration::from_secs(10)),
            idle_in_transaction: Some(Duration::from_secs(60)),
        }
    }
}

/// The `DB_*` variable, the server setting (where there is one) and the field of each timeout.
type Field = fn(&mut Timeouts) -> TimeoutSlot<'_>;

/// A field of [`Timeouts`], required or optional.
pub(super) enum TimeoutSlot<'a> {
    Required(&'a mut Duration),
    Optional(&'a mut Option<Duration>),
}

/// Every timeout: its variable, its server setting (`None` for the pool's), its field.
pub(super) const FIELDS: [(&str, Option<&str>, Field); 6] = [
    ("DB_ACQUIRE_TIMEOUT", None, |t| {
        TimeoutSlot::Required(&mut t.acquire)
    }),
    ("DB_IDLE_TIMEOUT", None, |t| {
        TimeoutSlot::Optional(&mut t.idle)
    }),
    ("DB_MAX_LIFETIME", None, |t| {
        TimeoutSlot::Optional(&mut t.max_lifetime)
    }),
    ("DB_STATEMENT_TIMEOUT", Some("statement_timeout"), |t| {
        TimeoutSlot::Optional(&mut t.statement)
    }),
    ("DB_LOCK_TIMEOUT", Some("lock_timeout"), |t| {
        TimeoutSlot::Optional(&mut t.lock)
    }),
    (
        "DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT",
        Some("idle_in_transaction_session_timeout"),
        |t| TimeoutSlot::Optional(&mut t.idle_in_transaction),
    ),
];

impl Timeouts {
    /// The defaults ([`Timeouts::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Timeouts::acquire`].
    pub fn acquire(mut self, acquire: Duration) -> Self {
        self.acquire = acquire;
        self
    }

    /// Sets [`Timeouts::idle`].
    pub fn idle(mut self, idle: Option<Duration>) -> Self {
        self.idle = idle;
        self
    }

    /// Sets [`Timeouts::max_lifetime`].
    pub fn max_lifetime(mut self, max_lifetime: Option<Duration>) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// Sets [`Timeouts::statement`].
    pub fn statement(mut self, statement: Option<Duration>) -> Self {
        self.statement = statement;
        self
    }

    /// Sets [`Timeouts::lock`].
    pub fn lock(mut self, lock: Option<Duration>) -> Self {
        self.lock = lock;
        self
    }

    /// Sets [`Timeouts::idle_in_transaction`].
    pub fn idle_in_transaction(mut self, idle_in_transaction: Option<Duration>) -> Self {
        self.idle_in_transaction = idle_in_transaction;
        self
    }

    /// The server settings to send at connect, in milliseconds (`0` turns one off, overriding
    /// the server's or the role's default).
    pub(super) fn server_settings(&self) -> [(&'static str, u128); 3] {
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis().max(1));
        [
            ("statement_timeout", ms(self.statement)),
            ("lock_timeout", ms(self.lock)),
            (
                "idle_in_transaction_session_timeout",
                ms(self.idle_in_transaction),
            ),
        ]
    }

    /// Sets the field of `name` (a `DB_*` variable or a server setting) from `value`.
    pub(super) fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let Some((variable, setting, field)) = FIELDS
            .iter()
            .find(|(variable, setting, _)| *variable == name || *setting == Some(name))
        else {
            return Err(Error::Config(format!("{name}: not a timeout")));
        };
        let bare_unit = if setting.is_some() && *variable != name {
            // PostgreSQL's own setting: a bare number is milliseconds, as the server reads it.
            Some(Duration::from_millis(1))
        } else {
            None
        };
        let duration = parse_duration(value, bare_unit)
            .map_err(|reason| Error::Config(format!("{name}: {reason}")))?;
        match field(self) {
            TimeoutSlot::Required(slot) => {
                if duration.is_zero() {
                    return Err(Error::Config(format!("{name}: must be more than 0")));
                }
                *slot = duration;
            }
            TimeoutSlot::Optional(slot) => *slot = (!duration.is_zero()).then_some(duration),
        }
        Ok(())
    }
}

/// Parses a duration as PostgreSQL writes one: a whole number with a unit (`500ms`, `5s`, `2min`,
/// `1h`, `1d`), or `0`. A bare number takes `bare_unit` when there is one.
fn parse_duration(
    value: &str,
    bare_unit: Option<Duration>,
) -> std::result::Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let unit = unit.trim();
    let Ok(number) = number.parse::<u64>() else {
        return Err(format!(
            "{value:?} is not a duration (a whole number with ms, s, min, h or d; 0 for none)"
        ));
    };
    let per = match unit {
        "ms" => Duration::from_millis(1),
        "s" => Duration::from_secs(1),
        "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        "d" => Duration::from_secs(86_400),
        "" if number == 0 => return Ok(Duration::ZERO),
        "" => match bare_unit {
            Some(per) => per,
            None => {
                return Err(format!(
                    "{value:?} has no unit (write ms, s, min, h or d; 0 for none)"
                ));
            }
        },
        other => {
            return Err(format!(
                "unknown unit {other:?} in {value:?} (ms, s, min, h or d)"
            ));
        }
    };
    per.checked_mul(u32::try_from(number).map_err(|_| format!("{value:?} is too long"))?)
        .ok_or_else(|| format!("{value:?} is too long"))
}

/// The server settings a startup `options` string sets (`-c name=value`, `--name=value`), as
/// `(name, value)` pairs in order.
pub(super) fn options_settings(options: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let pair = if word == "-c" {
            words.next()
        } else if let Some(rest) = word.strip_prefix("-c") {
            Some(rest)
        } else {
            word.strip_prefix("--")
        };
        if let Some((name, value)) = pair.and_then(|p| p.split_once('=')) {
            out.push((name.replace('-', "_"), value.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_postgresql_writes_them() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(parse_duration("500ms", None), Ok(ms(500)));
        assert_eq!(parse_duration("5s", None), Ok(ms(5_000)));
        assert_eq!(parse_duration("2min", None), Ok(ms(120_000)));
        assert_eq!(parse_duration(" 1h ", None), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("0", None), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250", Some(ms(1))), Ok(ms(250)));
        for bad in ["", "5", "-1s", "5 parsecs", "1.5s", "s", "99999999999h"] {
            assert!(parse_duration(bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn variables_and_server_settings_set_their_field() {
        let mut t = Timeouts::default();
        t.set("DB_LOCK_TIMEOUT", "2s").unwrap();
        assert_eq!(t.lock, Some(Duration::from_secs(2)));
        t.set("lock_timeout", "750").unwrap();
        assert_eq!(t.lock, Some(Duration::from_millis(750)));
        t.set("DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "0")
            .unwrap();
        assert_eq!(t.idle_in_transaction, None);
        t.set("DB_STATEMENT_TIMEOUT", "30s").unwrap();
        assert_eq!(t.server_settings()[0], ("statement_timeout", 30_000));
        assert_eq!(
            t.server_settings()[2],
            ("idle_in_transaction_session_timeout", 0)
        );
        assert!(t.set("DB_ACQUIRE_TIMEOUT", "0").is_err());
        assert!(
            t.set("DB_ACQUIRE_TIMEOUT", "250").is_err(),
            "a variable needs a unit"
        );
        let err = t.set("DB_LOCK_TIMEOUT", "soon").unwrap_err().to_string();
        assert!(err.starts_with("configuration: DB_LOCK_TIMEOUT: "), "{err}");
    }

    #[test]
    fn startup_options_are_read_in_both_spellings() {
        assert_eq!(
            options_settings("-c lock_timeout=5s --statement-timeout=1min -cwork_mem=4MB"),
            [
                ("lock_timeout".to_owned(), "5s".to_owned()),
                ("statement_timeout".to_owned(), "1min".to_owned()),
                ("work_mem".to_owned(), "4MB".to_owned()),
            ]
        );
    }
}
