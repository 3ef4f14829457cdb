//! Reading host lists: libpq's URL form and the seed's `DB_HOST`/`DB_PORT` lists, and writing
//! them back as a URL libpq reads.

use std::time::Duration;

use percent_encoding::percent_decode_str;

use super::{DEFAULT_PORT, Endpoint, Hosts, LoadBalanceHosts, TargetSessionAttrs};
use crate::{Error, Result};

/// A URL split into its host list and a one-host URL sqlx can parse for everything else.
pub(crate) struct SplitUrl {
    /// The URL with only the first host, and without the parameters that [`Hosts`] reads.
    pub(crate) first: String,
    pub(crate) hosts: Hosts,
}

impl Hosts {
    /// The seed's variables: `DB_HOST` a comma-separated list (a path is a socket directory),
    /// `DB_PORT` one port for all or one per host.
    pub(crate) fn from_variables(hosts: &str, ports: Option<&str>) -> Result<Vec<Endpoint>> {
        let names: Vec<&str> = hosts.split(',').collect();
        let ports: Vec<&str> = ports.map_or_else(Vec::new, |p| p.split(',').collect());
        if ports.len() > 1 && ports.len() != names.len() {
            return Err(Error::Config(format!(
                "DB_PORT: could not match {} port numbers to {} hosts",
                ports.len(),
                names.len()
            )));
        }
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let name = name.trim();
                if name.is_empty() {
                    return Err(empty_host("DB_HOST", i, names.len()));
                }
                let port = match ports.get(if ports.len() == 1 { 0 } else { i }) {
                    Some(port) => parse_port("DB_PORT", port.trim(), i, ports.len())?,
                    None => DEFAULT_PORT,
                };
                Ok(Endpoint::new(name, port))
            })
            .collect()
    }

    /// Splits `postgres://user:pw@h1:p1,h2:p2/db?...`. Returns `None` for a URL that names one
    /// host and none of `target_session_attrs`, `load_balance_hosts` and `connect_timeout`,
    /// which sqlx reads as it is.
    pub(crate) fn split_url(url: &str, default_timeout: Duration) -> Result<Option<SplitUrl>> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(None);
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (userinfo, hostlist) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (tail, None),
        };
        let mut target = TargetSessionAttrs::Any;
        let mut load_balance = LoadBalanceHosts::Disable;
        let mut connect_timeout = default_timeout;
        let mut kept = Vec::new();
        let mut ours = false;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value).decode_utf8_lossy();
            match key {
                "target_session_attrs" => target = value.parse()?,
                "load_balance_hosts" => load_balance = value.parse()?,
                "connect_timeout" => connect_timeout = parse_timeout(&value)?,
                _ => {
                    kept.push(pair);
                    continue;
                }
            }
            ours = true;
        }
        let entries = split_hosts(hostlist);
        if entries.len() == 1 && !ours {
            return Ok(None);
        }
        let endpoints = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| parse_entry(entry, i, entries.len()))
            .collect::<Result<Vec<_>>>()?;
        let first = format!(
            "{scheme}://{userinfo}{}{path}{}{}",
            entries[0],
            if kept.is_empty() { "" } else { "?" },
            kept.join("&")
        );
        Ok(Some(SplitUrl {
            first,
            hosts: Hosts::new(endpoints, target, load_balance, connect_timeout)?,
        }))
    }

    /// `url` (one host) with its authority's host replaced by the whole list, and the list's
    /// parameters: a URL libpq reads the same way.
    pub(crate) fn url_with_list(&self, url: &str, default_timeout: Duration) -> String {
        let hosts = self;
        let list: Vec<String> = hosts
            .endpoints()
            .iter()
            .map(|endpoint| match endpoint {
                Endpoint::Socket { dir, port } => format!(
                    "{}:{port}",
                    percent_encoding::utf8_percent_encode(
                        &dir.display().to_string(),
                        percent_encoding::NON_ALPHANUMERIC
                    )
                ),
                tcp => tcp.to_string(),
            })
            .collect();
        let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let userinfo = authority.rfind('@').map_or("", |at| &authority[..=at]);
        let mut out = format!("{scheme}://{userinfo}{}{tail}", list.join(","));
        let mut params = Vec::new();
        if hosts.target_session_attrs() != TargetSessionAttrs::Any {
            params.push(format!(
                "target_session_attrs={}",
                hosts.target_session_attrs()
            ));
        }
        if hosts.load_balance_hosts() == LoadBalanceHosts::Random {
            params.push("load_balance_hosts=random".to_owned());
        }
        if hosts.connect_timeout() != default_timeout {
            params.push(format!("connect_timeout={}", hosts.connect_timeout_secs()));
        }
        if !params.is_empty() {
            out.push(if tail.contains('?') { '&' } else { '?' });
            out.push_str(&params.join("&"));
        }
        out
    }
}

/// The entries of a URL's host list: `h1:5432`, `[::1]:5433`, `h3`. A comma inside brackets
/// does not split.
fn split_hosts(hostlist: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let (mut start, mut depth) = (0, 0);
    for (i, ch) in hostlist.char_indices() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                entries.push(&hostlist[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&hostlist[start..]);
    entries
}

/// One entry of a URL's host list.
fn parse_entry(entry: &str, i: usize, of: usize) -> Result<Endpoint> {
    let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(Error::Config(format!(
                "DATABASE_URL: host {} of {of} opens '[' without closing it",
                i + 1
            )));
        };
        (host, after.strip_prefix(':'))
    } else {
        match entry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        }
    };
    let host = percent_decode_str(host).decode_utf8_lossy();
    if host.is_empty() {
        return Err(empty_host("DATABASE_URL", i, of));
    }
    let port = match port {
        Some(port) => parse_port("DATABASE_URL", port, i, of)?,
        None => DEFAULT_PORT,
    };
    Ok(Endpoint::new(&host, port))
}

fn parse_port(what: &str, port: &str, i: usize, of: usize) -> Result<u16> {
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(Error::Config(format!(
            "{what}: port {} of {of} is not a port number (1 to 65535)",
            i + 1
        ))),
    }
}

fn parse_timeout(value: &str) -> Result<Duration> {
    match value.trim().parse::<u64>() {
        // libpq: zero (or a negative number) waits forever; anything under 2 s is 2 s.
        Ok(0) => Ok(Duration::MAX),
        Ok(seconds) => Ok(Duration::from_secs(seconds.max(2))),
        Err(_) => Err(Error::Config(format!(
            "invalid integer value {value:?} for connection option \"connect_timeout\""
        ))),
    }
}

fn empty_host(what: &str, i: usize, of: usize) -> Error {
    Error::Config(format!(
        "{what}: host {} of {of} is empty (libpq would read it as its default unix socket; name \
         the server)",
        i + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const T: Duration = Duration::from_secs(5);

    fn split(url: &str) -> Hosts {
        Hosts::split_url(url, T).unwrap().unwrap().hosts
    }

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn a_one_host_url_without_our_parameters_is_left_to_sqlx() {
        assert!(
            Hosts::split_url("postgres://u:p@h:5433/db?sslmode=require", T)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn each_host_has_its_own_port_or_the_default() {
        let hosts = split("postgres://u:p%40ss@h1:5433,h2,[::1]:7000/db?sslmode=disable");
        assert_eq!(
            hosts.endpoints(),
            [tcp("h1", 5433), tcp("h2", 5432), tcp("::1", 7000)]
        );
        assert_eq!(hosts.endpoints()[2].to_string(), "[::1]:7000");
        assert_eq!(hosts.target_session_attrs(), TargetSessionAttrs::Any);
    }

    #[test]
    fn the_first_url_keeps_everything_but_the_other_hosts_and_our_parameters() {
        let split = Hosts::split_url(
            "postgresql://u:p@h1:1,h2:2/db?sslmode=disable&target_session_attrs=read-write&connect_timeout=3&application_name=x",
            T,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            split.first,
            "postgresql://u:p@h1:1/db?sslmode=disable&application_name=x"
        );
        assert_eq!(
            split.hosts.target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
        assert_eq!(split.hosts.connect_timeout(), Duration::from_secs(3));
    }

    #[test]
    fn a_single_host_with_a_session_to_check_is_not_plain() {
        let hosts = split("postgres://u@h/db?target_session_attrs=standby");
        assert_eq!(hosts.endpoints(), [tcp("h", 5432)]);
        assert!(hosts.target_session_attrs().needs_check());
    }

    #[test]
    fn a_percent_encoded_path_is_a_socket_directory() {
        let hosts = split("postgres://u@%2Ftmp%2Fpg:5444,h2/db");
        assert_eq!(
            hosts.endpoints()[0],
            Endpoint::Socket {
                dir: PathBuf::from("/tmp/pg"),
                port: 5444
            }
        );
    }

    #[test]
    fn malformed_lists_are_config_errors_that_name_the_position() {
        let cases = [
            ("postgres://u@h1,,h3/db", "host 2 of 3 is empty"),
            ("postgres://u@h1,/db", "host 2 of 2 is empty"),
            (
                "postgres://u@h1:x,h2/db",
                "port 1 of 2 is not a port number",
            ),
            (
                "postgres://u@h1,h2:99999/db",
                "port 2 of 2 is not a port number",
            ),
            ("postgres://u@h1,[::1/db", "host 2 of 2 opens '['"),
            (
                "postgres://u@h1,h2/db?target_session_attrs=writer",
                "invalid target_session_attrs value: \"writer\"",
            ),
            (
                "postgres://u@h1,h2/db?load_balance_hosts=roundrobin",
                "invalid load_balance_hosts value",
            ),
            (
                "postgres://u@h1,h2/db?connect_timeout=soon",
                "invalid integer value \"soon\"",
            ),
        ];
        for (url, expected) in cases {
            match Hosts::split_url(url, T) {
                Err(Error::Config(message)) => {
                    assert!(message.contains(expected), "{url}: {message}")
                }
                Err(other) => panic!("{url}: {other:?}"),
                Ok(_) => panic!("{url}: accepted"),
            }
        }
    }

    #[test]
    fn the_seeds_variables_take_one_port_for_all_or_one_each() {
        assert_eq!(
            Hosts::from_variables("h1,h2", Some("6000")).unwrap(),
            [tcp("h1", 6000), tcp("h2", 6000)]
        );
        assert_eq!(
            Hosts::from_variables("h1, h2,/run/pg", Some("1,2,3")).unwrap()[2],
            Endpoint::Socket {
                dir: PathBuf::from("/run/pg"),
                port: 3
            }
        );
        assert_eq!(
            Hosts::from_variables("h1,h2", None).unwrap(),
            [tcp("h1", 5432), tcp("h2", 5432)]
        );
        let cases = [
            (
                "h1,h2",
                Some("1,2,3"),
                "could not match 3 port numbers to 2 hosts",
            ),
            ("h1,,h3", None, "DB_HOST: host 2 of 3 is empty"),
            (
                "h1,h2",
                Some("1,x"),
                "DB_PORT: port 2 of 2 is not a port number",
            ),
        ];
        for (hosts, ports, expected) in cases {
            let err = Hosts::from_variables(hosts, ports).unwrap_err();
            assert!(err.to_string().contains(expected), "{hosts}: {err}");
        }
    }
}
