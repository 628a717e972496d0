//! Authorization of `/api/*`: the `apikey <key>` header, compared in constant time.

use super::ApiError;

pub(super) fn check_api_key(api_key: Option<&str>, header: Option<&[u8]>) -> Result<(), ApiError> {
    // An empty key would be matched by `apikey ` alone: treat it as no key.
    let Some(expected) = api_key.filter(|k| !k.is_empty()) else {
        return Err(ApiError::Unauthorized(
            "the HTTP API is disabled: no API key is configured",
        ));
    };
    let Some(header) = header else {
        return Err(ApiError::Unauthorized(
            "missing Authorization header (expected `apikey <key>`)",
        ));
    };
    let header = trim_blanks(header);
    let split = header.iter().position(|&b| b == b' ' || b == b'\t');
    let Some((scheme, key)) = split.map(|i| (&header[..i], trim_blanks(&header[i..]))) else {
        return Err(ApiError::Unauthorized(
            "malformed Authorization header (expected `apikey <key>`)",
        ));
    };
    if !scheme.eq_ignore_ascii_case(b"apikey") {
        return Err(ApiError::Unauthorized(
            "malformed Authorization header (expected `apikey <key>`)",
        ));
    }
    if !constant_time_eq(key, expected.as_bytes()) {
        return Err(ApiError::Unauthorized("invalid API key"));
    }
    Ok(())
}

/// Compares without an early exit, so the time taken reveals nothing about how many leading
/// bytes matched; it depends only on the length of `given`, which the caller knows anyway.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() {
        return given.is_empty();
    }
    let mut diff = u8::from(given.len() != expected.len());
    for (i, &b) in given.iter().enumerate() {
        diff |= b ^ expected[i % expected.len()];
    }
    core::hint::black_box(diff) == 0
}

fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::api::test_support::*;

    #[test]
    fn no_configured_key_refuses_everyone_with_401() {
        let mut sb = new_sb();
        for key in [None, Some("")] {
            let r = call_auth(&mut sb, key, Some(b"apikey "), "GET", "/api/stats", "");
            assert_eq!(r.status, 401);
            assert_eq!(r.headers, vec![("WWW-Authenticate", "apikey".to_owned())]);
            assert!(error_of(&r).1.contains("no API key is configured"));
        }
    }

    #[test]
    fn missing_or_wrong_key_is_401_even_for_unknown_paths() {
        let mut sb = new_sb();
        for auth in [
            None,
            Some(&b"apikey wrong"[..]),
            Some(b"apikey s3cret-ke"),
            Some(b"apikey s3cret-key2"),
            Some(b"Bearer s3cret-key"),
            Some(b"s3cret-key"),
            Some(b"apikey"),
            Some(b"\xff\xfe"),
        ] {
            for target in ["/api/stats", "/api/nope"] {
                let r = call_auth(&mut sb, Some(KEY), auth, "GET", target, "");
                assert_eq!(r.status, 401, "{auth:?} {target}");
            }
        }
    }

    #[test]
    fn key_scheme_is_case_insensitive_and_blanks_are_trimmed() {
        let mut sb = new_sb();
        for auth in [&b"APIKEY s3cret-key"[..], b"  ApiKey \t s3cret-key  "] {
            let r = call_auth(&mut sb, Some(KEY), Some(auth), "GET", "/api/stats", "");
            assert_eq!(r.status, 200);
        }
    }

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abcabc", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
    }
}
