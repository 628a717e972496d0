//! Tokens, timestamps and bounded waiting.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use switchboard_core::auth::{sign_hs256, Claims};

/// The default bound of every single wait for something the server should do promptly.
pub const WAIT: Duration = Duration::from_secs(5);

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_millis_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// Claims for `sub` valid for an hour.
pub fn claims(sub: &str) -> Claims {
    Claims {
        sub: sub.to_string(),
        exp: unix_now() + 3600,
        device: None,
        topics: None,
        info: None,
    }
}

/// A token for `sub` valid for an hour.
pub fn token(secret: &[u8], sub: &str) -> String {
    sign_hs256(secret, &claims(sub))
}

/// A token that expired a minute ago.
pub fn expired_token(secret: &[u8], sub: &str) -> String {
    let mut c = claims(sub);
    c.exp = unix_now() - 60;
    sign_hs256(secret, &c)
}

/// Unpadded base64url.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut buf = [0u8; 3];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = (u32::from(buf[0]) << 16) | (u32::from(buf[1]) << 8) | u32::from(buf[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// An unsigned `alg: none` token for `sub`: must be refused.
pub fn alg_none_token(sub: &str) -> String {
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(
        serde_json::json!({"sub": sub, "exp": unix_now() + 3600})
            .to_string()
            .as_bytes(),
    );
    format!("{header}.{payload}.")
}

/// Percent-encodes a query parameter value.
pub fn query_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `s` is RFC 3339 UTC with exactly three fractional digits and `Z`:
/// `2026-11-23T10:00:00.123Z`.
pub fn is_protocol_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 24 {
        return false;
    }
    let digit = |i: usize| b[i].is_ascii_digit();
    let digits = |r: std::ops::Range<usize>| r.clone().all(digit);
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
}

/// Milliseconds since the epoch of a protocol timestamp (no validation beyond the shape).
pub fn timestamp_unix_millis(s: &str) -> Option<u64> {
    if !is_protocol_timestamp(s) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, se, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs * 1000 + ms).ok()
}

/// Checks that a server message carries a protocol timestamp; panics naming the message.
pub fn assert_timestamp(msg: &Value) {
    match msg.get("timestamp").and_then(Value::as_str) {
        Some(ts) if is_protocol_timestamp(ts) => {}
        _ => panic!("server message without a valid `timestamp` (RFC 3339, 3 digits, Z): {msg}"),
    }
}

/// Polls `check` every 50 ms until it returns true; panics with `what` after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Awaits `fut` for at most `within`; panics with `what` if it takes longer.
pub async fn within<T>(what: &str, within: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(within, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {within:?}: {what}"),
    }
}

/// Panics unless `msg` is a presence message of `user` with this state.
pub fn assert_presence(msg: &serde_json::Value, user: &str, online: bool, connections: u64) {
    assert_eq!(
        (
            msg["type"].as_str(),
            msg["userId"].as_str(),
            msg["online"].as_bool(),
            msg["connections"].as_u64()
        ),
        (
            Some("presence"),
            Some(user),
            Some(online),
            Some(connections)
        ),
        "expected presence of {user} online={online} connections={connections}, got {msg}"
    );
}
