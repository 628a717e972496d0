//! The wire format of server messages and the close codes, as PROTOCOL.md gives them: oracles
//! written independently of the core's own code (the fuzz targets use them too).

use serde_json::Value;
use switchboard_core::CloseCode;

/// Every close code of PROTOCOL.md's table.
pub const PROTOCOL_CLOSE_CODES: [u16; 11] = [
    1000, 1001, 1007, 1008, 1009, 1011, 4001, 4003, 4008, 4009, 4029,
];

/// Every `type` a server message may have (PROTOCOL.md).
pub const SERVER_TYPES: [&str; 10] = [
    "auth_success",
    "auth_error",
    "subscribed",
    "unsubscribed",
    "ack",
    "message",
    "presence",
    "pong",
    "error",
    "push",
];

/// Application error codes carried by `error` and `auth_error`.
pub const ERROR_CODES: [u64; 6] = [400, 401, 403, 404, 409, 429];

/// Whether the core may close a connection with this code on its own.
pub fn is_protocol_close_code(code: CloseCode) -> bool {
    PROTOCOL_CLOSE_CODES.contains(&code.0)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a wall-clock time, by Howard Hinnant's `civil_from_days`.
pub fn expected_timestamp(unix_millis: u64) -> String {
    let secs = unix_millis / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        unix_millis % 1000
    )
}

/// Whether `s` has the shape `YYYY-MM-DDTHH:MM:SS.mmmZ` with in-range fields.
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 24 {
        return false;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let ok = b.iter().zip(shape).all(|(c, p)| match p {
        b'd' => c.is_ascii_digit(),
        p => c == p,
    });
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(u32::MAX);
    ok && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 60
}

/// Parses one server payload and checks what every server message must satisfy: a JSON object
/// with a known string `type`, and `timestamp` equal to `expected_ts` (the wall clock of the
/// step that produced it). Returns the object.
pub fn server_message(payload: &[u8], expected_ts: &str) -> serde_json::Map<String, Value> {
    let text = std::str::from_utf8(payload).expect("server payload is UTF-8");
    let value: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("server payload is not JSON ({e}): {text}"));
    let Value::Object(map) = value else {
        panic!("server payload is not a JSON object: {text}")
    };
    let ty = map
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("server payload has no string type: {text}"));
    assert!(SERVER_TYPES.contains(&ty), "unknown server type: {text}");
    let ts = map
        .get("timestamp")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("server payload has no string timestamp: {text}"));
    assert!(is_timestamp(ts), "malformed timestamp {ts:?}: {text}");
    assert_eq!(
        ts, expected_ts,
        "timestamp is not the step's wall clock: {text}"
    );
    if let Some(id) = map.get("id") {
        let id = id
            .as_str()
            .unwrap_or_else(|| panic!("non-string id: {text}"));
        assert!(id.len() <= 64, "echoed id over 64 bytes: {text}");
    }
    match ty {
        "error" | "auth_error" => {
            let code = map.get("code").and_then(Value::as_u64);
            assert!(
                code.is_some_and(|c| ERROR_CODES.contains(&c)),
                "bad error code: {text}"
            );
            assert!(
                ty == "error" || code == Some(401),
                "auth_error is not 401: {text}"
            );
            assert!(
                map.get("message").is_some_and(Value::is_string),
                "error without message: {text}"
            );
        }
        "presence" => {
            let online = map.get("online").and_then(Value::as_bool);
            let n = map.get("connections").and_then(Value::as_u64);
            assert!(
                map.get("userId").is_some_and(Value::is_string),
                "presence without userId: {text}"
            );
            assert_eq!(online, n.map(|n| n > 0), "presence online/count: {text}");
        }
        "message" => {
            assert!(map.get("topic").is_some_and(Value::is_string), "{text}");
            assert!(map.contains_key("data"), "message without data: {text}");
            let sender = map.get("metadata").and_then(|m| m.get("senderId"));
            assert!(
                sender.is_some_and(Value::is_string),
                "message without metadata.senderId: {text}"
            );
        }
        "push" => assert!(map.contains_key("data"), "push without data: {text}"),
        "subscribed" | "unsubscribed" => {
            assert!(map.get("topic").is_some_and(Value::is_string), "{text}")
        }
        "auth_success" => {
            assert!(map.get("userId").is_some_and(Value::is_string), "{text}");
            assert!(map.get("connId").is_some_and(Value::is_string), "{text}");
        }
        _ => {}
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(expected_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            expected_timestamp(1_795_428_000_123),
            "2026-11-23T10:00:00.123Z"
        );
        assert!(is_timestamp("2026-11-23T10:00:00.123Z"));
        assert!(!is_timestamp("2026-13-23T10:00:00.123Z"));
    }
}
