//! `POST /api/disconnect`: closing a user's or one device's connections with a code and reason.

use serde::Serialize;

use super::fields::Fields;
use super::{bad, ApiError};
use crate::http::HttpResponse;
use crate::{CloseCode, Now, Switchboard};

/// Close code of `/api/disconnect` without `code`: policy, "do not reconnect automatically".
const DEFAULT_DISCONNECT_CODE: u16 = 1008;

/// Close reason of `/api/disconnect` without `reason`.
const DEFAULT_DISCONNECT_REASON: &str = "disconnected by server";

/// A close frame's payload is at most 125 bytes, two of which carry the code.
const MAX_CLOSE_REASON_BYTES: usize = 123;

pub(super) fn disconnect(
    sb: &mut Switchboard,
    now: Now,
    f: &Fields<'_>,
) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    struct Closed {
        closed: usize,
    }
    let user = f.user_id()?;
    let device = f.device_id()?;
    let code = match f.raw("code") {
        None => DEFAULT_DISCONNECT_CODE,
        Some(raw) => {
            let n: u64 = serde_json::from_str(raw.get())
                .map_err(|_| bad("field `code` must be an integer close code"))?;
            match u16::try_from(n) {
                Ok(c) if CloseCode(c).is_application_code() => c,
                _ => {
                    return Err(bad(format!(
                        "close code {n} is not allowed: use 1000, 1008 or 4000-4999"
                    )))
                }
            }
        }
    };
    let reason = f
        .string("reason")?
        .unwrap_or_else(|| DEFAULT_DISCONNECT_REASON.to_owned());
    if reason.len() > MAX_CLOSE_REASON_BYTES {
        return Err(bad(format!(
            "field `reason` is {} bytes, more than the {MAX_CLOSE_REASON_BYTES} a close frame allows",
            reason.len()
        )));
    }
    match sb.disconnect_user(now, &user, device.as_deref(), CloseCode(code), &reason) {
        Ok(n) => Ok(HttpResponse::json(200, &Closed { closed: n })),
        Err(e) => Err(bad(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use crate::http::api::test_support::*;
    use crate::{Action, CloseCode};

    #[test]
    fn disconnect_defaults_to_1008_with_a_reason() {
        let mut sb = new_sb();
        let c1 = open(&mut sb, "alice", Some("phone"));
        let c2 = open(&mut sb, "alice", Some("laptop"));
        let r = call(&mut sb, "POST", "/api/disconnect", r#"{"userId":"alice"}"#);
        assert_eq!(json(&r), serde_json::json!({"closed": 2}));
        let closes: Vec<_> = drain(&mut sb)
            .into_iter()
            .filter_map(|a| match a {
                Action::Close {
                    conn, code, reason, ..
                } => Some((conn, code, reason)),
                _ => None,
            })
            .collect();
        assert_eq!(closes.len(), 2);
        for (conn, code, reason) in closes {
            assert!(conn == c1 || conn == c2);
            assert_eq!(code, CloseCode(1008));
            assert_eq!(reason, "disconnected by server");
        }
        assert!(!sb.is_online("alice"));
    }

    #[test]
    fn disconnect_one_device_with_code_and_reason() {
        let mut sb = new_sb();
        let phone = open(&mut sb, "alice", Some("phone"));
        open(&mut sb, "alice", Some("laptop"));
        let r = call(
            &mut sb,
            "POST",
            "/api/disconnect",
            r#"{"userId":"alice","deviceId":"phone","code":4000,"reason":"bye"}"#,
        );
        assert_eq!(json(&r), serde_json::json!({"closed": 1}));
        let actions = drain(&mut sb);
        assert!(actions.contains(&Action::Close {
            conn: phone,
            code: CloseCode(4000),
            reason: "bye".into(),
            mode: crate::CloseMode::Flush,
        }));
        assert_eq!(sb.user_connections("alice").len(), 1);
        let r = call(
            &mut sb,
            "POST",
            "/api/disconnect",
            r#"{"userId":"nobody","code":1000}"#,
        );
        assert_eq!(json(&r), serde_json::json!({"closed": 0}));
    }

    #[test]
    fn disconnect_with_a_bad_code_or_long_reason_is_400() {
        let mut sb = new_sb();
        open(&mut sb, "alice", None);
        let long = "r".repeat(124);
        for (body, want) in [
            (
                r#"{"userId":"alice","code":1001}"#.to_owned(),
                "close code 1001 is not allowed",
            ),
            (
                r#"{"userId":"alice","code":5000}"#.to_owned(),
                "close code 5000 is not allowed",
            ),
            (
                r#"{"userId":"alice","code":70000}"#.to_owned(),
                "close code 70000 is not allowed",
            ),
            (
                r#"{"userId":"alice","code":-1}"#.to_owned(),
                "field `code` must be an integer",
            ),
            (
                r#"{"userId":"alice","code":1000.5}"#.to_owned(),
                "field `code` must be an integer",
            ),
            (
                r#"{"userId":"alice","code":"1000"}"#.to_owned(),
                "field `code` must be an integer",
            ),
            (
                format!(r#"{{"userId":"alice","reason":"{long}"}}"#),
                "124 bytes, more than the 123",
            ),
            (
                r#"{"userId":"alice","reason":5}"#.to_owned(),
                "field `reason` must be a string",
            ),
        ] {
            let (status, message) = error_of(&call(&mut sb, "POST", "/api/disconnect", &body));
            assert_eq!(status, 400, "{body}");
            assert!(message.contains(want), "{body}: {message}");
            assert!(drain(&mut sb).is_empty());
        }
        let ok = format!(r#"{{"userId":"alice","reason":"{}"}}"#, "r".repeat(123));
        assert_eq!(call(&mut sb, "POST", "/api/disconnect", &ok).status, 200);
    }
}
