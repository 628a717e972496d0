//! `POST /api/send` and `POST /api/broadcast`: a push to a user, device, connection or many users.

use super::fields::Fields;
use super::{bad, delivered, ApiError};
use crate::cluster::ConnLocation;
use crate::http::HttpResponse;
use crate::{ConnId, Now, Switchboard};

/// Whether `s` is written like a connection id of some node (`c-<index>-<generation>`, or
/// `<node>.<boot>.<index>.<generation>`), so that naming one that is gone is a 410, not a 400.
fn looks_like_conn_id(s: &str) -> bool {
    s.parse::<ConnId>().is_ok() || (s.split('.').count() == 4 && !s.split('.').any(str::is_empty))
}

pub(super) fn send(
    sb: &mut Switchboard,
    now: Now,
    f: &Fields<'_>,
) -> Result<HttpResponse, ApiError> {
    if let Some(ids) = f.raw("connIds") {
        return send_to_conn_ids(sb, now, f, ids);
    }
    let user = f.user_id()?;
    let device = f.device_id()?;
    let conn = f.string("connId")?;
    let data = f.required_raw("data")?;
    if let Some(conn) = conn {
        // Addressed to this user (and device): another user's connection is, to this caller,
        // as gone as a closed one.
        let (conn_user, conn_device) = match sb.locate_conn(&conn) {
            ConnLocation::Here(id) => {
                let info = sb.connection(id).ok_or(ApiError::Gone)?;
                (
                    info.user().map(str::to_owned),
                    info.device().map(str::to_owned),
                )
            }
            ConnLocation::Elsewhere(_) => {
                let remote = sb.remote_connections(&user).find(|c| c.id() == conn);
                let remote = remote.ok_or(ApiError::Gone)?;
                (
                    Some(remote.user().to_owned()),
                    remote.device().map(str::to_owned),
                )
            }
            ConnLocation::Nowhere if looks_like_conn_id(&conn) => return Err(ApiError::Gone),
            ConnLocation::Nowhere => {
                return Err(bad("field `connId` is not a connection id"));
            }
        };
        let on_device = device.is_none() || conn_device == device;
        if conn_user.as_deref() != Some(user.as_str()) || !on_device {
            return Err(ApiError::Gone);
        }
        // `delivered` counts this node's recipients: one held elsewhere is reached through
        // the bus and counted by its own node.
        let here = sb
            .send_to_conn_id(now, &conn, data)
            .map_err(|_| ApiError::Gone)?;
        return Ok(delivered(usize::from(here)));
    }
    let n = match &device {
        Some(d) => sb.send_to_device(now, &user, d, data),
        None => sb.send_to_user(now, &user, data),
    };
    Ok(delivered(n))
}

/// Most connection ids in one `POST /api/send`.
const MAX_CONN_IDS: usize = 1000;

/// `POST /api/send {"connIds":[…],"data"}`: one push to each, and the ids that reached nobody.
fn send_to_conn_ids(
    sb: &mut Switchboard,
    now: Now,
    f: &Fields<'_>,
    ids: &serde_json::value::RawValue,
) -> Result<HttpResponse, ApiError> {
    if ["userId", "deviceId", "connId"]
        .iter()
        .any(|k| f.raw(k).is_some())
    {
        return Err(bad(
            "field `connIds` names the connections alone: without `userId`, `deviceId` or `connId`",
        ));
    }
    let ids: Vec<String> = serde_json::from_str(ids.get())
        .map_err(|_| bad("field `connIds` must be an array of strings"))?;
    if ids.is_empty() || ids.len() > MAX_CONN_IDS {
        return Err(bad(format!(
            "field `connIds` must list 1 to {MAX_CONN_IDS} connection ids, not {}",
            ids.len()
        )));
    }
    let data = f.required_raw("data")?;
    let (delivered, gone) = sb.send_to_conn_ids(now, ids.iter().map(String::as_str), data);
    #[derive(serde::Serialize)]
    struct Body {
        delivered: usize,
        gone: Vec<String>,
    }
    Ok(HttpResponse::json(200, &Body { delivered, gone }))
}

pub(super) fn broadcast(
    sb: &mut Switchboard,
    now: Now,
    f: &Fields<'_>,
) -> Result<HttpResponse, ApiError> {
    let data = f.required_raw("data")?;
    let users = f
        .raw("userIds")
        .map(|raw| {
            serde_json::from_str::<Vec<String>>(raw.get())
                .map_err(|_| bad("field `userIds` must be an array of strings"))
        })
        .transpose()?;
    let n = match &users {
        Some(users) => sb.send_to_users(now, users.iter().map(String::as_str), data),
        None => sb.broadcast(now, data),
    };
    Ok(delivered(n))
}

#[cfg(test)]
mod tests {
    use crate::http::api::test_support::*;

    #[test]
    fn send_to_user_device_and_connection_counts_recipients() {
        let mut sb = new_sb();
        let phone = open(&mut sb, "alice", Some("phone"));
        let laptop = open(&mut sb, "alice", Some("laptop"));
        open(&mut sb, "bob", None);

        let r = call(
            &mut sb,
            "POST",
            "/api/send",
            r#"{"userId":"alice","data":{"x":1}}"#,
        );
        assert_eq!(json(&r), serde_json::json!({"delivered": 2}));
        let sent = sends(&drain(&mut sb));
        assert_eq!(sent.len(), 2);
        assert!(
            sent[0].1.starts_with(r#"{"type":"push","data":{"x":1}"#),
            "{}",
            sent[0].1
        );

        let r = call(
            &mut sb,
            "POST",
            "/api/send",
            r#"{"userId":"alice","deviceId":"phone","data":2}"#,
        );
        assert_eq!(json(&r), serde_json::json!({"delivered": 1}));
        assert_eq!(sends(&drain(&mut sb))[0].0, phone);

        let body = format!(r#"{{"userId":"alice","connId":"{laptop}","data":3}}"#);
        let r = call(&mut sb, "POST", "/api/send", &body);
        assert_eq!(json(&r), serde_json::json!({"delivered": 1}));
        assert_eq!(sends(&drain(&mut sb))[0].0, laptop);

        let r = call(
            &mut sb,
            "POST",
            "/api/send",
            r#"{"userId":"nobody","data":3}"#,
        );
        assert_eq!(json(&r), serde_json::json!({"delivered": 0}));
    }

    #[test]
    fn send_to_a_gone_or_foreign_connection_is_410() {
        let mut sb = new_sb();
        let alice = open(&mut sb, "alice", Some("phone"));
        let bob = open(&mut sb, "bob", None);
        let gone = open(&mut sb, "alice", Some("tablet"));
        sb.handle_closed(now(), gone);
        drain(&mut sb);
        for body in [
            format!(r#"{{"userId":"alice","connId":"{gone}","data":1}}"#),
            format!(r#"{{"userId":"alice","connId":"{bob}","data":1}}"#),
            format!(r#"{{"userId":"alice","deviceId":"laptop","connId":"{alice}","data":1}}"#),
            r#"{"userId":"alice","connId":"c-999-0","data":1}"#.to_owned(),
        ] {
            let r = call(&mut sb, "POST", "/api/send", &body);
            assert_eq!(
                error_of(&r),
                (410, "connection is gone".to_owned()),
                "{body}"
            );
            assert!(sends(&drain(&mut sb)).is_empty());
        }
    }

    #[test]
    fn send_with_bad_fields_is_400() {
        let mut sb = new_sb();
        for (body, want) in [
            (
                r#"{"userId":"a","connId":"conn-1","data":1}"#,
                "field `connId` is not a connection id",
            ),
            (
                r#"{"userId":"a","connId":7,"data":1}"#,
                "field `connId` must be a string",
            ),
            (
                r#"{"userId":"a","deviceId":"a b","data":1}"#,
                "field `deviceId`: invalid device id",
            ),
            (
                r#"{"userId":"a","deviceId":null,"data":1}"#,
                "field `deviceId` must be a string",
            ),
            (
                r#"{"userId":"","data":1}"#,
                "field `userId` must not be empty",
            ),
            (r#"{"data":1}"#, "missing field `userId`"),
            (r#"{"userId":"a"}"#, "missing field `data`"),
        ] {
            let (status, message) = error_of(&call(&mut sb, "POST", "/api/send", body));
            assert_eq!(status, 400, "{body}");
            assert!(message.contains(want), "{body}: {message}");
        }
    }

    #[test]
    fn broadcast_reaches_everyone_or_the_listed_users() {
        let mut sb = new_sb();
        open(&mut sb, "alice", Some("a1"));
        open(&mut sb, "alice", Some("a2"));
        let bob = open(&mut sb, "bob", None);
        open(&mut sb, "carol", None);

        let r = call(&mut sb, "POST", "/api/broadcast", r#"{"data":"hi"}"#);
        assert_eq!(json(&r), serde_json::json!({"delivered": 4}));
        assert_eq!(sends(&drain(&mut sb)).len(), 4);

        let r = call(
            &mut sb,
            "POST",
            "/api/broadcast",
            r#"{"data":"hi","userIds":["alice","bob","bob","nobody"]}"#,
        );
        assert_eq!(json(&r), serde_json::json!({"delivered": 3}));
        assert!(sends(&drain(&mut sb)).iter().any(|(c, _)| *c == bob));

        let r = call(
            &mut sb,
            "POST",
            "/api/broadcast",
            r#"{"data":1,"userIds":[]}"#,
        );
        assert_eq!(json(&r), serde_json::json!({"delivered": 0}));
    }

    #[test]
    fn broadcast_with_bad_user_ids_is_400() {
        let mut sb = new_sb();
        open(&mut sb, "alice", None);
        for body in [
            r#"{"data":1,"userIds":"alice"}"#,
            r#"{"data":1,"userIds":[1]}"#,
            r#"{"data":1,"userIds":null}"#,
        ] {
            let r = call(&mut sb, "POST", "/api/broadcast", body);
            assert_eq!(
                error_of(&r),
                (
                    400,
                    "field `userIds` must be an array of strings".to_owned()
                ),
                "{body}"
            );
            assert!(drain(&mut sb).is_empty());
        }
        let r = call(&mut sb, "POST", "/api/broadcast", r#"{"userIds":["a"]}"#);
        assert_eq!(error_of(&r), (400, "missing field `data`".to_owned()));
    }
}

#[cfg(test)]
mod conn_ids_tests {
    use crate::http::api::test_support::*;

    #[test]
    fn send_to_conn_ids_pushes_once_to_each_and_lists_those_that_reached_nobody() {
        let mut sb = new_sb();
        let a = open(&mut sb, "alice", None);
        let b = open(&mut sb, "bob", None);
        let gone = open(&mut sb, "carol", None);
        sb.handle_closed(now(), gone);
        drain(&mut sb);
        let body =
            format!(r#"{{"connIds":["{a}","{b}","{a}","{gone}","c-99-0"],"data":{{"x":1}}}}"#);
        let r = call(&mut sb, "POST", "/api/send", &body);
        assert_eq!(r.status, 200);
        let mut want_gone = vec![gone.to_string(), "c-99-0".to_owned()];
        want_gone.sort();
        assert_eq!(
            json(&r),
            serde_json::json!({"delivered": 2, "gone": want_gone})
        );
        let mut got: Vec<_> = sends(&drain(&mut sb)).into_iter().map(|(c, _)| c).collect();
        got.sort();
        assert_eq!(got, [a, b], "one push each, a listed twice reached once");
    }

    #[test]
    fn send_to_conn_ids_takes_1_to_1000_ids_and_no_user() {
        let mut sb = new_sb();
        let cases = [
            r#"{"connIds":[],"data":1}"#.to_owned(),
            r#"{"connIds":"c-0-0","data":1}"#.to_owned(),
            r#"{"connIds":["c-0-0"],"userId":"alice","data":1}"#.to_owned(),
            r#"{"connIds":["c-0-0"]}"#.to_owned(),
            format!(
                r#"{{"connIds":{},"data":1}}"#,
                serde_json::json!(vec!["c-0-0"; 1001])
            ),
        ];
        for body in &cases {
            assert_eq!(
                error_of(&call(&mut sb, "POST", "/api/send", body)).0,
                400,
                "{body}"
            );
        }
        let at_limit = format!(
            r#"{{"connIds":{},"data":1}}"#,
            serde_json::json!(vec!["c-0-0"; 1000])
        );
        assert_eq!(call(&mut sb, "POST", "/api/send", &at_limit).status, 200);
    }
}
