//! `--allowed-origins`: which browser origins may open a WebSocket.

use core::net::Ipv6Addr;

/// Why an `--allowed-origins` list does not parse. Each variant carries the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOrigin {
    /// The list, or one comma-separated entry of it, is empty.
    #[error("empty origin in the allowed-origins list")]
    Empty,
    /// `*` was combined with other origins; it must stand alone.
    #[error("`*` must stand alone in the allowed-origins list")]
    WildcardNotAlone,
    /// The entry is not `http://…` or `https://…`.
    #[error("origin `{0}` must start with http:// or https://")]
    BadScheme(String),
    /// The host is missing or has characters a host cannot have.
    #[error("origin `{0}` has an invalid host")]
    BadHost(String),
    /// The port is empty, not a number, or not in 1..=65535.
    #[error("origin `{0}` has an invalid port")]
    BadPort(String),
    /// The entry has a path, query, fragment or user info (an origin is `scheme://host[:port]`).
    #[error("origin `{0}` must be scheme://host[:port] with no path")]
    HasPath(String),
}

/// One origin, normalized: scheme and host lowercase, default port made explicit.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

/// Which browser origins may open a WebSocket (`--allowed-origins`).
///
/// The default allows any origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// `None`: any origin.
    allowed: Option<Vec<Origin>>,
}

impl OriginPolicy {
    /// A policy that allows every origin (the default).
    pub fn any() -> Self {
        OriginPolicy { allowed: None }
    }

    /// Comma-separated origins, e.g. `https://app.example.com,http://localhost:3000`; `*` alone
    /// means any. Each must be `scheme://host[:port]` with scheme http or https and no path.
    ///
    /// Blanks around entries are ignored; an empty entry (`a,,b`, a blank list) is an error,
    /// and so is a trailing `/` (a path). IPv6 hosts are written in brackets.
    pub fn parse(list: &str) -> Result<Self, InvalidOrigin> {
        let entries: Vec<&str> = list.split(',').map(str::trim).collect();
        if entries.contains(&"*") {
            return if entries.len() == 1 {
                Ok(Self::any())
            } else {
                Err(InvalidOrigin::WildcardNotAlone)
            };
        }
        let mut allowed = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.is_empty() {
                return Err(InvalidOrigin::Empty);
            }
            let origin = parse_origin(entry)?;
            if !allowed.contains(&origin) {
                allowed.push(origin);
            }
        }
        Ok(OriginPolicy {
            allowed: Some(allowed),
        })
    }

    /// Whether this policy allows every origin.
    pub fn is_any(&self) -> bool {
        self.allowed.is_none()
    }

    /// A request without `Origin` (not a browser) is allowed. Origins compare as
    /// `scheme://host[:port]`, scheme and host case-insensitive, default ports (80 for http, 443
    /// for https) equal to no port. `null` and unparsable origins are refused unless the policy
    /// is any.
    pub fn allows(&self, origin: Option<&[u8]>) -> bool {
        let Some(allowed) = &self.allowed else {
            return true;
        };
        let Some(value) = origin else {
            return true;
        };
        let Ok(value) = core::str::from_utf8(value) else {
            return false;
        };
        // `null` (opaque origins: sandboxed iframes, file://) fails to parse like any garbage.
        match parse_origin(value.trim_matches([' ', '\t'])) {
            Ok(origin) => allowed.contains(&origin),
            Err(_) => false,
        }
    }
}

/// `scheme://host[:port]` -> normalized origin.
fn parse_origin(entry: &str) -> Result<Origin, InvalidOrigin> {
    let bad = |make: fn(String) -> InvalidOrigin| make(entry.to_owned());
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or_else(|| bad(InvalidOrigin::BadScheme))?;
    let https = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return Err(bad(InvalidOrigin::BadScheme));
    };
    if rest.contains(['/', '?', '#', '@', '\\']) {
        return Err(bad(InvalidOrigin::HasPath));
    }
    // IPv6 literals carry colons of their own, so the port is what follows `]`.
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| bad(InvalidOrigin::BadHost))?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad(InvalidOrigin::BadHost))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad(InvalidOrigin::BadHost))?,
            ),
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !host_ok {
            return Err(bad(InvalidOrigin::BadHost));
        }
        (host.to_ascii_lowercase(), port)
    };
    let default_port = if https { 443 } else { 80 };
    let port = match port {
        None => default_port,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse() {
            Ok(0) | Err(_) => return Err(bad(InvalidOrigin::BadPort)),
            Ok(n) => n,
        },
        Some(_) => return Err(bad(InvalidOrigin::BadPort)),
    };
    Ok(Origin { https, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &str) -> OriginPolicy {
        OriginPolicy::parse(list).unwrap()
    }

    #[test]
    fn default_and_star_allow_everything_including_null() {
        for p in [
            OriginPolicy::default(),
            OriginPolicy::any(),
            policy("*"),
            policy(" * "),
        ] {
            assert!(p.is_any());
            assert!(p.allows(None));
            assert!(p.allows(Some(b"null")));
            assert!(p.allows(Some(b"https://evil.example")));
            assert!(p.allows(Some(b"\xff garbage")));
        }
    }

    #[test]
    fn a_request_without_origin_is_allowed() {
        assert!(policy("https://app.example.com").allows(None));
    }

    #[test]
    fn listed_origins_are_allowed_and_others_refused() {
        let p = policy("https://app.example.com, http://localhost:3000");
        assert!(p.allows(Some(b"https://app.example.com")));
        assert!(p.allows(Some(b"http://localhost:3000")));
        assert!(!p.allows(Some(b"http://app.example.com")));
        assert!(!p.allows(Some(b"https://app.example.com:8443")));
        assert!(!p.allows(Some(b"http://localhost:3001")));
        assert!(!p.allows(Some(b"https://evil.example")));
        assert!(!p.allows(Some(b"https://app.example.com.evil.example")));
    }

    #[test]
    fn scheme_and_host_compare_case_insensitively() {
        let p = policy("HTTPS://App.Example.COM");
        assert!(p.allows(Some(b"https://app.example.com")));
        assert!(p.allows(Some(b"hTTps://APP.example.com")));
    }

    #[test]
    fn default_ports_equal_no_port() {
        let p = policy("https://a.example,http://b.example:80");
        assert!(p.allows(Some(b"https://a.example:443")));
        assert!(p.allows(Some(b"http://b.example")));
        assert!(!p.allows(Some(b"http://a.example:443")));
        assert!(!p.allows(Some(b"https://b.example")));
    }

    #[test]
    fn null_and_unparsable_origins_are_refused_by_a_list() {
        let p = policy("https://a.example");
        for bad in [
            &b"null"[..],
            b"",
            b"a.example",
            b"https://a.example/",
            b"https://a.example/path",
            b"https://user@a.example",
            b"ftp://a.example",
            b"https://a.example:",
            b"https://a.example:99999",
            b"https://a.example\xff",
        ] {
            assert!(!p.allows(Some(bad)), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ipv6_origins_compare_as_addresses() {
        let p = policy("http://[::1]:8080,https://[2001:DB8::1]");
        assert!(p.allows(Some(b"http://[::1]:8080")));
        assert!(p.allows(Some(b"http://[0:0:0:0:0:0:0:1]:8080")));
        assert!(p.allows(Some(b"https://[2001:db8::1]:443")));
        assert!(!p.allows(Some(b"http://[::1]")));
    }

    #[test]
    fn parse_refuses_malformed_lists_with_a_reason() {
        assert_eq!(OriginPolicy::parse(""), Err(InvalidOrigin::Empty));
        assert_eq!(
            OriginPolicy::parse("https://a,,https://b"),
            Err(InvalidOrigin::Empty)
        );
        assert_eq!(
            OriginPolicy::parse("*,https://a"),
            Err(InvalidOrigin::WildcardNotAlone)
        );
        assert_eq!(
            OriginPolicy::parse("a.example"),
            Err(InvalidOrigin::BadScheme("a.example".into()))
        );
        assert_eq!(
            OriginPolicy::parse("ws://a"),
            Err(InvalidOrigin::BadScheme("ws://a".into()))
        );
        assert_eq!(
            OriginPolicy::parse("https://a/"),
            Err(InvalidOrigin::HasPath("https://a/".into()))
        );
        assert_eq!(
            OriginPolicy::parse("https://"),
            Err(InvalidOrigin::BadHost("https://".into()))
        );
        assert_eq!(
            OriginPolicy::parse("https://a:0"),
            Err(InvalidOrigin::BadPort("https://a:0".into()))
        );
        assert_eq!(
            OriginPolicy::parse("https://a:x"),
            Err(InvalidOrigin::BadPort("https://a:x".into()))
        );
        assert_eq!(
            OriginPolicy::parse("http://[::g]").unwrap_err().to_string(),
            "origin `http://[::g]` has an invalid host"
        );
    }
}
