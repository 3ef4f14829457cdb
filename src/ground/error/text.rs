//! An error as text for a person: the server's message without sqlx's decorations, and
//! [`report`], an error with its causes on one line.

/// sqlx's text for an error, without the parts that mislead a reader: the server's message
/// alone for a server error (sqlx adds "error returned from database: " before it and
/// " at line N", the line of PostgreSQL's C source that raised it, after it).
pub(super) fn server_text(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => without_source_line(&other.to_string()),
    }
}

/// [`Error::Tls`](super::Error::Tls)'s text: "tls with the server failed", and, when rustls
/// could not read the server's certificate for its version, what to do about it (webpki reads
/// X.509 v3 only, and says `UnsupportedCertVersion` even where nothing is verified).
pub(super) fn tls_text(err: &sqlx::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(s) = source {
        if s.to_string().contains("UnsupportedCertVersion") {
            return "tls with the server failed: the server's certificate is X.509 v1 (or v2), \
                    which rustls cannot read even where it verifies nothing (psql accepts it): \
                    build ledger with its `tls` feature (OpenSSL, as libpq), or give the server \
                    a v3 certificate"
                .to_owned();
        }
        source = s.source();
    }
    "tls with the server failed".to_owned()
}

/// An error and its sources on one line, each cause said once and without sqlx's " at line N"
/// (the line of PostgreSQL's C source that raised a server error, which reads as a line of the
/// caller's SQL): what to show a user or write to a log. The command line prints its errors so.
///
/// ```
/// let err = ledger::Config::from_url("postgres://[::1/db").unwrap_err();
/// assert_eq!(ledger::report(&err), "configuration: database URL: invalid IPv6 address");
/// ```
pub fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = without_source_line(&err.to_string());
    let mut source = err.source();
    while let Some(s) = source {
        let cause = without_source_line(&s.to_string());
        // sqlx's errors print their source in their own text, and `Error::Database` prints the
        // server's message that its source prints after "error returned from database: ".
        let said = cause
            .strip_prefix("error returned from database: ")
            .unwrap_or(&cause);
        if !text.ends_with(said) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = s.source();
    }
    text
}

/// The text without every " at line N" that ends it or precedes a ':'.
fn without_source_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" at line ") {
        let after = &rest[at + " at line ".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let ends = after[digits..].is_empty() || after[digits..].starts_with(':');
        if digits > 0 && ends {
            out.push_str(&rest[..at]);
        } else {
            out.push_str(&rest[..at + " at line ".len() + digits]);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}
