//! Reading what a client presents in its WebSocket upgrade request: the `/ws` query
//! parameters and the `Authorization` / `User-Agent` headers.
//!
//! The WebSocket mechanics (method, `Upgrade`, `Sec-WebSocket-*`, `Origin`) are checked
//! elsewhere; this module only extracts and validates the application's inputs.

use super::percent::{self, Plus};

/// Longest accepted `deviceName`, in bytes.
pub const MAX_DEVICE_NAME_BYTES: usize = 128;

/// Longest accepted device id, in characters (all ASCII, so also bytes).
pub const MAX_DEVICE_ID_CHARS: usize = 64;

/// Longest recorded `User-Agent`, in bytes.
pub const MAX_USER_AGENT_BYTES: usize = 512;

/// What a client presented in its WebSocket upgrade request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handshake {
    /// The JWT from `Authorization: Bearer` or else the `token` parameter (never empty).
    pub token: Option<String>,
    /// The `device` parameter, already checked with [`validate_device_id`].
    pub device: Option<String>,
    /// The `deviceName` parameter (free text, at most 128 bytes).
    pub device_name: Option<String>,
    /// The `User-Agent` header (lossy UTF-8, at most 512 bytes).
    pub user_agent: Option<String>,
}

/// Why an upgrade request is refused before any WebSocket is opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The path is not `/ws`.
    #[error("not found")]
    NotFound,
    /// The `device` parameter (or a `deviceId`) is not 1..=64 chars of `[A-Za-z0-9._:-]`;
    /// the string says why.
    #[error("invalid device id: {0}")]
    InvalidDevice(String),
    /// The `deviceName` parameter is longer than [`MAX_DEVICE_NAME_BYTES`].
    #[error("deviceName is {len} bytes, more than the 128 allowed")]
    DeviceNameTooLong {
        /// Its length in bytes after percent-decoding.
        len: usize,
    },
    /// A parameter this server reads has malformed percent-encoding or is not UTF-8.
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("malformed Authorization header (expected `Bearer <token>`)")]
    InvalidAuthorization,
}

impl HandshakeError {
    /// HTTP status: NotFound 404, everything else 400.
    pub fn http_status(&self) -> u16 {
        match self {
            HandshakeError::NotFound => 404,
            _ => 400,
        }
    }
}

/// Device ids are 1..=64 chars of `[A-Za-z0-9._:-]`.
pub fn validate_device_id(s: &str) -> Result<(), HandshakeError> {
    if s.is_empty() {
        return Err(HandshakeError::InvalidDevice("must not be empty".into()));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(HandshakeError::InvalidDevice(
            "may only contain A-Z, a-z, 0-9, '.', '_', ':' and '-'".into(),
        ));
    }
    // Checked after the charset, so the byte length is the character count.
    if s.len() > MAX_DEVICE_ID_CHARS {
        return Err(HandshakeError::InvalidDevice(format!(
            "is {} characters, more than the {MAX_DEVICE_ID_CHARS} allowed",
            s.len()
        )));
    }
    Ok(())
}

impl Handshake {
    /// Parses the request target (`/ws?token=…&device=…&deviceName=…`) and headers (name,
    /// value bytes; names case-insensitive). Path must be exactly `/ws` else NotFound. Query
    /// values are percent-decoded (`+` is a space) and must be UTF-8. The first occurrence of
    /// a parameter wins. An empty `token` is treated as absent. `Authorization: Bearer <jwt>`
    /// (scheme case-insensitive) is accepted like `token`; when both are given, the header
    /// wins. `User-Agent` is recorded (lossy UTF-8, truncated to 512 bytes on a char
    /// boundary). Malformed `device` -> InvalidDevice; `deviceName` over 128 bytes ->
    /// DeviceNameTooLong.
    ///
    /// Also accepted: the absolute form `http://host/ws?…` (RFC 9112 §3.2.2). Only the first
    /// `Authorization` and `User-Agent` headers are read. Unknown parameters, and parameters
    /// whose name cannot be decoded, are ignored without being decoded.
    pub fn from_request<'h, I>(target: &str, headers: I) -> Result<Handshake, HandshakeError>
    where
        I: IntoIterator<Item = (&'h str, &'h [u8])>,
    {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (target, ""),
        };
        if path_of(path) != "/ws" {
            return Err(HandshakeError::NotFound);
        }

        let mut hs = Handshake::default();
        let (mut seen_token, mut seen_device, mut seen_name) = (false, false, false);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let Ok(key) = percent::decode(raw_key, Plus::Space) else {
                continue;
            };
            let seen = match &*key {
                "token" => &mut seen_token,
                "device" => &mut seen_device,
                "deviceName" => &mut seen_name,
                _ => continue,
            };
            if std::mem::replace(seen, true) {
                continue; // the first occurrence wins
            }
            let value = percent::decode(raw_value, Plus::Space)
                .map_err(|why| HandshakeError::InvalidQuery(format!("parameter `{key}`: {why}")))?;
            match &*key {
                "token" => {
                    if !value.is_empty() {
                        hs.token = Some(value.into_owned());
                    }
                }
                "device" => {
                    validate_device_id(&value)?;
                    hs.device = Some(value.into_owned());
                }
                _ => {
                    if value.len() > MAX_DEVICE_NAME_BYTES {
                        return Err(HandshakeError::DeviceNameTooLong { len: value.len() });
                    }
                    hs.device_name = Some(value.into_owned());
                }
            }
        }

        let (mut seen_auth, mut seen_ua) = (false, false);
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("authorization")
                && !std::mem::replace(&mut seen_auth, true)
            {
                // The header wins over the query parameter.
                hs.token = Some(bearer_token(value)?.to_owned());
            } else if name.eq_ignore_ascii_case("user-agent")
                && !std::mem::replace(&mut seen_ua, true)
            {
                hs.user_agent = Some(truncate_lossy(value, MAX_USER_AGENT_BYTES));
            }
        }
        Ok(hs)
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, surrounding blanks allowed).
fn bearer_token(value: &[u8]) -> Result<&str, HandshakeError> {
    let value = std::str::from_utf8(value).map_err(|_| HandshakeError::InvalidAuthorization)?;
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, token) = value
        .split_once([' ', '\t'])
        .ok_or(HandshakeError::InvalidAuthorization)?;
    let token = token.trim_start_matches([' ', '\t']);
    // A JWT is visible ASCII with no blanks; anything else cannot verify anyway.
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(HandshakeError::InvalidAuthorization);
    }
    Ok(token)
}

/// Lossy UTF-8, cut to at most `max` bytes without splitting a character.
fn truncate_lossy(value: &[u8], max: usize) -> String {
    let mut s = String::from_utf8_lossy(value).into_owned();
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The path of a request target: the query cut off, and for the absolute form
/// (`http://host/path`) the scheme and authority too (an absolute URI without a path has the
/// empty path).
pub(crate) fn path_of(target: &str) -> &str {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let starts = |prefix: &str| {
        path.get(..prefix.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
    };
    let rest = if starts("http://") {
        &path[7..]
    } else if starts("https://") {
        &path[8..]
    } else {
        return path;
    };
    rest.find('/').map_or("", |i| &rest[i..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(target: &str, headers: &[(&str, &[u8])]) -> Result<Handshake, HandshakeError> {
        Handshake::from_request(target, headers.iter().copied())
    }

    #[test]
    fn bare_ws_path_gives_an_empty_handshake() {
        assert_eq!(parse("/ws", &[]), Ok(Handshake::default()));
        assert_eq!(parse("/ws?", &[]), Ok(Handshake::default()));
    }

    #[test]
    fn all_parameters_are_read() {
        let hs = parse(
            "/ws?token=abc.def.ghi&device=phone-1&deviceName=My+Phone",
            &[],
        )
        .unwrap();
        assert_eq!(hs.token.as_deref(), Some("abc.def.ghi"));
        assert_eq!(hs.device.as_deref(), Some("phone-1"));
        assert_eq!(hs.device_name.as_deref(), Some("My Phone"));
        assert_eq!(hs.user_agent, None);
    }

    #[test]
    fn other_paths_are_not_found_with_status_404() {
        for target in [
            "/",
            "/ws/",
            "/WS",
            "/wss",
            "/ws2?token=a",
            "/api/ws",
            "",
            "ws",
            "/%77s",
        ] {
            let e = parse(target, &[]).unwrap_err();
            assert_eq!(e, HandshakeError::NotFound, "{target}");
            assert_eq!(e.http_status(), 404);
        }
    }

    #[test]
    fn absolute_form_targets_are_accepted() {
        let hs = parse("http://example.com:8080/ws?token=t", &[]).unwrap();
        assert_eq!(hs.token.as_deref(), Some("t"));
        assert_eq!(parse("HTTPS://h/ws", &[]), Ok(Handshake::default()));
        assert_eq!(parse("http://h", &[]), Err(HandshakeError::NotFound));
        assert_eq!(parse("http://h/other", &[]), Err(HandshakeError::NotFound));
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let hs = parse("/ws?deviceName=Caf%C3%A9%20%2B+1%26x&device=a%3Ab", &[]).unwrap();
        assert_eq!(hs.device_name.as_deref(), Some("Café + 1&x"));
        assert_eq!(hs.device.as_deref(), Some("a:b"));
        // Encoded parameter names are recognised too.
        let hs = parse("/ws?%74oken=x", &[]).unwrap();
        assert_eq!(hs.token.as_deref(), Some("x"));
    }

    #[test]
    fn malformed_percent_encoding_is_an_invalid_query() {
        for target in [
            "/ws?token=%",
            "/ws?token=%4",
            "/ws?deviceName=%zz",
            "/ws?device=a%g1",
        ] {
            let e = parse(target, &[]).unwrap_err();
            assert!(
                matches!(e, HandshakeError::InvalidQuery(_)),
                "{target}: {e:?}"
            );
            assert_eq!(e.http_status(), 400);
        }
    }

    #[test]
    fn non_utf8_values_are_an_invalid_query() {
        let e = parse("/ws?deviceName=%FF%FE", &[]).unwrap_err();
        assert_eq!(
            e,
            HandshakeError::InvalidQuery("parameter `deviceName`: not valid UTF-8".into())
        );
    }

    #[test]
    fn unknown_parameters_are_ignored_even_when_malformed() {
        let hs = parse("/ws?x=%zz&&=&%zz=1&token=t&flag", &[]).unwrap();
        assert_eq!(hs.token.as_deref(), Some("t"));
    }

    #[test]
    fn first_occurrence_of_a_parameter_wins() {
        let hs = parse(
            "/ws?token=a&token=b&device=d1&device=!!&deviceName=x&deviceName=%zz",
            &[],
        )
        .unwrap();
        assert_eq!(hs.token.as_deref(), Some("a"));
        assert_eq!(hs.device.as_deref(), Some("d1"));
        assert_eq!(hs.device_name.as_deref(), Some("x"));
    }

    #[test]
    fn empty_token_is_treated_as_absent() {
        assert_eq!(parse("/ws?token=", &[]).unwrap().token, None);
        assert_eq!(parse("/ws?token", &[]).unwrap().token, None);
        // The empty first occurrence still counts as the first.
        assert_eq!(parse("/ws?token=&token=b", &[]).unwrap().token, None);
    }

    #[test]
    fn device_of_64_chars_is_accepted_and_65_refused() {
        let ok = "a".repeat(64);
        let hs = parse(&format!("/ws?device={ok}"), &[]).unwrap();
        assert_eq!(hs.device.as_deref(), Some(ok.as_str()));
        let e = parse(&format!("/ws?device={}", "a".repeat(65)), &[]).unwrap_err();
        assert!(matches!(e, HandshakeError::InvalidDevice(_)));
        assert_eq!(e.http_status(), 400);
    }

    #[test]
    fn device_with_a_bad_character_or_empty_is_refused() {
        for target in [
            "/ws?device=",
            "/ws?device=a%20b",
            "/ws?device=a/b",
            "/ws?device=%C3%A9",
        ] {
            let e = parse(target, &[]).unwrap_err();
            assert!(
                matches!(e, HandshakeError::InvalidDevice(_)),
                "{target}: {e:?}"
            );
        }
    }

    #[test]
    fn validate_device_id_accepts_the_whole_alphabet() {
        assert_eq!(validate_device_id("AZaz09._:-"), Ok(()));
        assert_eq!(validate_device_id("x"), Ok(()));
        assert!(validate_device_id("").is_err());
        assert!(validate_device_id("a b").is_err());
        assert!(validate_device_id("é").is_err());
        assert!(validate_device_id("a\0").is_err());
        assert!(validate_device_id(&"é".repeat(40)).is_err());
        assert_eq!(
            validate_device_id(&"1".repeat(65)).unwrap_err().to_string(),
            "invalid device id: is 65 characters, more than the 64 allowed"
        );
    }

    #[test]
    fn device_name_of_128_bytes_is_accepted_and_129_refused() {
        let ok = "n".repeat(128);
        let hs = parse(&format!("/ws?deviceName={ok}"), &[]).unwrap();
        assert_eq!(hs.device_name.as_deref(), Some(ok.as_str()));
        let e = parse(&format!("/ws?deviceName={}", "n".repeat(129)), &[]).unwrap_err();
        assert_eq!(e, HandshakeError::DeviceNameTooLong { len: 129 });
        assert_eq!(e.http_status(), 400);
    }

    #[test]
    fn device_name_length_is_measured_after_decoding() {
        // 64 × "é" = 128 bytes, sent as 384 bytes of percent-encoding.
        let ok = "%C3%A9".repeat(64);
        assert!(parse(&format!("/ws?deviceName={ok}"), &[]).is_ok());
        let e = parse(&format!("/ws?deviceName={ok}x"), &[]).unwrap_err();
        assert_eq!(e, HandshakeError::DeviceNameTooLong { len: 129 });
    }

    #[test]
    fn bearer_header_is_accepted_like_token() {
        let hs = parse("/ws", &[("Authorization", b"Bearer abc.def.ghi")]).unwrap();
        assert_eq!(hs.token.as_deref(), Some("abc.def.ghi"));
        for value in [&b"bearer x"[..], b"BEARER   x  ", b"\tBeArEr\tx"] {
            let hs = parse("/ws", &[("authorization", value)]).unwrap();
            assert_eq!(
                hs.token.as_deref(),
                Some("x"),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn bearer_header_wins_over_the_token_parameter() {
        let hs = parse(
            "/ws?token=from-query",
            &[("AUTHORIZATION", b"Bearer from-header")],
        )
        .unwrap();
        assert_eq!(hs.token.as_deref(), Some("from-header"));
    }

    #[test]
    fn malformed_authorization_is_refused() {
        for value in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Basic dXNlcjpwYXNz",
            b"",
            b"Bearer a b",
            b"Bearer \xff",
            b"Bearer t\x01",
        ] {
            let e = parse("/ws?token=t", &[("Authorization", value)]).unwrap_err();
            assert_eq!(
                e,
                HandshakeError::InvalidAuthorization,
                "{:?}",
                String::from_utf8_lossy(value)
            );
            assert_eq!(e.http_status(), 400);
        }
    }

    #[test]
    fn only_the_first_authorization_header_is_read() {
        let hs = parse(
            "/ws",
            &[
                ("Authorization", b"Bearer one"),
                ("Authorization", b"garbage"),
            ],
        )
        .unwrap();
        assert_eq!(hs.token.as_deref(), Some("one"));
    }

    #[test]
    fn user_agent_is_recorded_lossily_and_truncated_on_a_char_boundary() {
        let hs = parse("/ws", &[("user-agent", b"curl/8.0 \xff"), ("Host", b"x")]).unwrap();
        assert_eq!(hs.user_agent.as_deref(), Some("curl/8.0 \u{fffd}"));

        let long = "é".repeat(300); // 600 bytes; 512 falls on a boundary
        let hs = parse("/ws", &[("User-Agent", long.as_bytes())]).unwrap();
        assert_eq!(hs.user_agent.as_deref(), Some("é".repeat(256).as_str()));

        let long = format!("a{}", "é".repeat(300)); // 512 falls inside an "é"
        let hs = parse("/ws", &[("User-Agent", long.as_bytes())]).unwrap();
        let ua = hs.user_agent.unwrap();
        assert_eq!(ua.len(), 511);
        assert!(ua.starts_with('a'));
    }

    #[test]
    fn errors_display_a_reason() {
        assert_eq!(HandshakeError::NotFound.to_string(), "not found");
        assert_eq!(
            HandshakeError::DeviceNameTooLong { len: 200 }.to_string(),
            "deviceName is 200 bytes, more than the 128 allowed"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_targets_and_headers_never_panic(
            target in "(/ws|http://|https://)?[?&=%+/a-zA-Z0-9éÿ]{0,60}",
            name in "(authorization|user-agent|x)",
            value in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let _ = parse(&target, &[(&name, &value)]);
        }

        #[test]
        fn decoding_an_encoded_device_name_gives_it_back(name in "\\PC{0,40}") {
            let mut enc = String::new();
            for b in name.bytes() {
                enc.push_str(&format!("%{b:02X}"));
            }
            let r = parse(&format!("/ws?deviceName={enc}"), &[]);
            if name.len() <= MAX_DEVICE_NAME_BYTES {
                prop_assert_eq!(r.unwrap().device_name, Some(name));
            } else {
                prop_assert_eq!(r.unwrap_err(), HandshakeError::DeviceNameTooLong { len: name.len() });
            }
        }
    }
}
