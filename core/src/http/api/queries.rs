//! `GET /api/stats`, `GET /api/presence/{userId}` and `GET /api/connections/{connId}`: counts,
//! a user's connections, and whether one connection is still there.

use serde::Serialize;
use serde_json::value::RawValue;

use super::params::{integer, params};
use super::{bad, ApiError};
use crate::cluster::{ConnLocation, RemoteConnection};
use crate::http::HttpResponse;
use crate::protocol::percent::{self, Plus};
use crate::protocol::write_timestamp;
use crate::{ConnectionInfo, Stats, Switchboard};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsBody<'a> {
    connections: usize,
    authenticated: usize,
    users: usize,
    subscriptions: usize,
    topics: usize,
    opened_total: u64,
    rejected_total: u64,
    evicted_total: u64,
    replaced_total: u64,
    frames_received_total: u64,
    messages_sent_total: u64,
    draining: bool,
    /// This node's name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<&'a str>,
    /// Live nodes of the cluster, this one included.
    nodes: usize,
}

pub(super) fn stats(sb: &Switchboard) -> HttpResponse {
    let Stats {
        connections,
        authenticated,
        users,
        subscriptions,
        topics,
        opened_total,
        rejected_total,
        evicted_total,
        replaced_total,
        frames_in_total,
        sends_total,
        nodes,
        ..
    } = sb.stats();
    HttpResponse::json(
        200,
        &StatsBody {
            connections,
            authenticated,
            users,
            subscriptions,
            topics,
            opened_total,
            rejected_total,
            evicted_total,
            replaced_total,
            frames_received_total: frames_in_total,
            messages_sent_total: sends_total,
            draining: sb.is_draining(),
            node_id: sb.node().map(|n| n.node.as_str()),
            nodes,
        },
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PresenceBody<'a> {
    user_id: &'a str,
    online: bool,
    connections: Vec<ConnectionView<'a>>,
}

/// One connection as the API shows it, wherever it is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionView<'a> {
    conn_id: String,
    /// The node that holds it, when nodes have names.
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<&'a str>,
    device_id: Option<&'a str>,
    device_name: Option<&'a str>,
    user_agent: Option<&'a str>,
    ip: String,
    connected_at: String,
    /// The token's `info` claim, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<&'a RawValue>,
}

impl<'a> ConnectionView<'a> {
    fn local(sb: &'a Switchboard, info: ConnectionInfo<'a>) -> Self {
        ConnectionView {
            conn_id: sb.conn_id_text(info.id()),
            node_id: sb.node().map(|n| n.node.as_str()),
            device_id: info.device(),
            device_name: info.device_name(),
            user_agent: info.user_agent(),
            ip: info.ip().to_string(),
            connected_at: timestamp(info.connected_at_unix_millis()),
            info: info.info(),
        }
    }

    fn remote(info: RemoteConnection<'a>) -> Self {
        ConnectionView {
            conn_id: info.id().to_owned(),
            node_id: Some(info.node()),
            device_id: info.device(),
            device_name: info.device_name(),
            user_agent: info.user_agent(),
            ip: info.ip().to_owned(),
            connected_at: timestamp(info.connected_at_unix_millis()),
            info: info.info(),
        }
    }
}

pub(super) fn presence(sb: &Switchboard, raw_user: &str) -> Result<HttpResponse, ApiError> {
    let user = percent::decode(raw_user, Plus::Literal)
        .ok()
        .ok_or_else(|| bad("user id in the path is not valid percent-encoded UTF-8"))?;
    if user.is_empty() {
        return Err(bad("missing user id: use /api/presence/{userId}"));
    }
    let local = sb
        .user_connections(&user)
        .iter()
        .filter_map(|&id| sb.connection(id))
        .map(|info| ConnectionView::local(sb, info));
    let remote = sb.remote_connections(&user).map(ConnectionView::remote);
    let connections = local.chain(remote).collect();
    Ok(HttpResponse::json(
        200,
        &PresenceBody {
            user_id: &user,
            online: sb.is_online(&user),
            connections,
        },
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionBody<'a> {
    user_id: Option<&'a str>,
    #[serde(flatten)]
    view: ConnectionView<'a>,
    /// Known for this node's connections only (the others announce no subscriptions).
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions: Option<Vec<&'a str>>,
}

impl<'a> ConnectionBody<'a> {
    fn local(sb: &'a Switchboard, info: ConnectionInfo<'a>) -> Self {
        let mut subscriptions: Vec<&str> = info.subscriptions().collect();
        subscriptions.sort_unstable();
        ConnectionBody {
            user_id: info.user(),
            view: ConnectionView::local(sb, info),
            subscriptions: Some(subscriptions),
        }
    }
}

/// Most connections one page of `GET /api/connections` lists.
const MAX_CONNECTIONS_LIMIT: u64 = 1000;

/// Connections a page of `GET /api/connections` lists without `limit`.
const DEFAULT_CONNECTIONS_LIMIT: u64 = 100;

#[derive(Serialize)]
struct ConnectionsBody<'a> {
    connections: Vec<ConnectionBody<'a>>,
    /// The `after` of the next page; `null` at the end.
    next: Option<String>,
}

/// `GET /api/connections?limit=N&after=CURSOR`: a page of this node's connections, each as
/// `GET /api/connections/{connId}` shows it, and the cursor of the next page (see
/// [`Switchboard::connections_page`]: a page may be short, or empty, and still have a `next`).
pub(super) fn connections(sb: &Switchboard, target: &str) -> Result<HttpResponse, ApiError> {
    let [limit, after] = params(target, ["limit", "after"])?;
    let limit = match limit {
        None => DEFAULT_CONNECTIONS_LIMIT,
        Some(text) => integer(&text)
            .filter(|n| (1..=MAX_CONNECTIONS_LIMIT).contains(n))
            .ok_or_else(|| bad("limit must be an integer from 1 to 1000"))?,
    };
    let after = match after {
        None => None,
        Some(text) => Some(
            integer(&text)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("invalid cursor: give the `next` of the previous page"))?,
        ),
    };
    // `limit` is 1..=1000: it fits.
    let page = sb.connections_page(after, limit as usize);
    let body = ConnectionsBody {
        connections: page
            .connections
            .into_iter()
            .map(|info| ConnectionBody::local(sb, info))
            .collect(),
        next: page.next.map(|n| n.to_string()),
    };
    Ok(HttpResponse::json(200, &body))
}

/// `GET /api/connections/{connId}`: 200 and what is known of it while it is there (on any node),
/// 410 once it is gone or if it never existed.
pub(super) fn connection(sb: &Switchboard, raw_conn: &str) -> Result<HttpResponse, ApiError> {
    let conn = percent::decode(raw_conn, Plus::Literal)
        .ok()
        .ok_or_else(|| bad("connection id in the path is not valid percent-encoded UTF-8"))?;
    let body = match sb.locate_conn(&conn) {
        ConnLocation::Here(id) => {
            ConnectionBody::local(sb, sb.connection(id).ok_or(ApiError::Gone)?)
        }
        ConnLocation::Elsewhere(_) => {
            let info = sb.remote_connection(&conn).ok_or(ApiError::Gone)?;
            ConnectionBody {
                user_id: Some(info.user()),
                view: ConnectionView::remote(info),
                subscriptions: None,
            }
        }
        ConnLocation::Nowhere => return Err(ApiError::Gone),
    };
    Ok(HttpResponse::json(200, &body))
}

fn timestamp(unix_millis: u64) -> String {
    let mut at = Vec::with_capacity(24);
    write_timestamp(&mut at, unix_millis);
    String::from_utf8_lossy(&at).into_owned()
}

#[cfg(test)]
mod tests {
    use crate::auth::{sign_hs256, Claims};
    use crate::http::api::test_support::*;
    use crate::{ConnId, Frame, Handshake};

    #[test]
    fn presence_of_an_online_user_lists_both_connections() {
        let mut sb = new_sb();
        let c1 = open(&mut sb, "alice@example.com", Some("phone"));
        let c2 = open(&mut sb, "alice@example.com", Some("laptop"));
        let r = call(&mut sb, "GET", "/api/presence/alice%40example.com?x=1", "");
        assert_eq!(r.status, 200);
        let v = json(&r);
        let conn = |id: ConnId, device: &str| {
            serde_json::json!({
                "connId": id.to_string(),
                "deviceId": device,
                "deviceName": format!("{device} name"),
                "userAgent": "agent/1",
                "ip": "192.0.2.7",
                "connectedAt": "2026-11-23T10:00:00.123Z",
            })
        };
        assert_eq!(
            v,
            serde_json::json!({
                "userId": "alice@example.com",
                "online": true,
                "connections": [conn(c1, "phone"), conn(c2, "laptop")],
            })
        );
    }

    #[test]
    fn presence_of_absent_fields_is_null() {
        let mut sb = new_sb();
        let token = sign_hs256(
            SECRET,
            &Claims {
                sub: "bob".into(),
                exp: T0 / 1000 + 60,
                device: None,
                topics: None,
                info: None,
            },
        );
        let hs = Handshake {
            token: Some(token),
            ..Handshake::default()
        };
        sb.open(now(), "::1".parse().unwrap(), hs).unwrap();
        let v = json(&call(&mut sb, "GET", "/api/presence/bob", ""));
        let c = &v["connections"][0];
        assert!(c["deviceId"].is_null() && c["deviceName"].is_null() && c["userAgent"].is_null());
        assert_eq!(c["ip"], "::1");
    }

    #[test]
    fn presence_of_an_unknown_user_is_offline_and_empty() {
        let mut sb = new_sb();
        let r = call(&mut sb, "GET", "/api/presence/ghost", "");
        assert_eq!(
            json(&r),
            serde_json::json!({"userId": "ghost", "online": false, "connections": []})
        );
    }

    #[test]
    fn presence_with_an_empty_or_malformed_user_id_is_400() {
        let mut sb = new_sb();
        for target in [
            "/api/presence/",
            "/api/presence",
            "/api/presence/?x",
            "/api/presence/%zz",
            "/api/presence/%ff",
        ] {
            assert_eq!(call(&mut sb, "GET", target, "").status, 400, "{target}");
        }
    }

    #[test]
    fn stats_reports_every_count() {
        let mut sb = new_sb();
        let c = open(&mut sb, "alice", None);
        sb.handle_frame(
            now(),
            c,
            Frame::Text(r#"{"type":"subscribe","topic":"a.*"}"#),
        );
        drain(&mut sb);
        let v = json(&call(&mut sb, "GET", "/api/stats", ""));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "connections",
            "authenticated",
            "users",
            "subscriptions",
            "topics",
            "openedTotal",
            "rejectedTotal",
            "evictedTotal",
            "replacedTotal",
            "framesReceivedTotal",
            "messagesSentTotal",
            "draining",
            "nodes",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["connections"], 1);
        assert_eq!(v["authenticated"], 1);
        assert_eq!(v["users"], 1);
        assert_eq!(v["subscriptions"], 1);
        assert_eq!(v["topics"], 1);
        assert_eq!(v["openedTotal"], 1);
        assert_eq!(v["framesReceivedTotal"], 1);
        assert_eq!(v["draining"], false);
    }
}

#[cfg(test)]
mod connection_tests {
    use crate::http::api::test_support::*;
    use crate::{Frame, Handshake};

    #[test]
    fn a_connection_is_200_with_its_subscriptions_while_there_and_410_once_gone() {
        let mut sb = new_sb();
        let id = open(&mut sb, "alice", Some("phone"));
        sb.handle_frame(
            now(),
            id,
            Frame::Text(r#"{"type":"subscribe","topic":"chat.*"}"#),
        );
        drain(&mut sb);
        let path = format!("/api/connections/{id}");
        let r = call(&mut sb, "GET", &path, "");
        assert_eq!(r.status, 200);
        assert_eq!(
            json(&r),
            serde_json::json!({
                "connId": id.to_string(),
                "userId": "alice",
                "deviceId": "phone",
                "deviceName": "phone name",
                "userAgent": "agent/1",
                "ip": "192.0.2.7",
                "connectedAt": "2026-11-23T10:00:00.123Z",
                "subscriptions": ["chat.*"],
            })
        );
        sb.handle_closed(now(), id);
        assert_eq!(call(&mut sb, "GET", &path, "").status, 410);
    }

    #[test]
    fn a_connection_that_never_existed_is_410_and_the_endpoint_is_get_only() {
        let mut sb = new_sb();
        assert_eq!(
            call(&mut sb, "GET", "/api/connections/c-7-0", "").status,
            410
        );
        assert_eq!(
            call(&mut sb, "GET", "/api/connections/nonsense", "").status,
            410
        );
        assert_eq!(
            call(&mut sb, "POST", "/api/connections/c-7-0", "").status,
            405
        );
        assert_eq!(call(&mut sb, "GET", "/api/connections/", "").status, 404);
    }

    #[test]
    fn the_token_info_is_returned_as_given_by_presence_and_connection_queries() {
        use crate::auth::{sign_hs256, Claims};
        let mut sb = new_sb();
        let info = serde_json::json!({"role": "admin", "tags": ["a", "b"]});
        let token = sign_hs256(
            SECRET,
            &Claims {
                sub: "alice".into(),
                exp: T0 / 1000 + 3600,
                device: None,
                topics: None,
                info: info.as_object().cloned(),
            },
        );
        let hs = Handshake {
            token: Some(token),
            ..Handshake::default()
        };
        let id = sb.open(now(), "192.0.2.7".parse().unwrap(), hs).unwrap();
        drain(&mut sb);
        let r = call(&mut sb, "GET", &format!("/api/connections/{id}"), "");
        assert_eq!(json(&r)["info"], info);
        let r = call(&mut sb, "GET", "/api/presence/alice", "");
        assert_eq!(json(&r)["connections"][0]["info"], info);
    }

    #[test]
    fn a_pending_connection_is_there_without_a_user() {
        let mut sb = new_sb();
        let id = sb
            .open(now(), "192.0.2.7".parse().unwrap(), Handshake::default())
            .unwrap();
        let r = call(&mut sb, "GET", &format!("/api/connections/{id}"), "");
        assert_eq!(
            (r.status, json(&r)["userId"].clone()),
            (200, serde_json::Value::Null)
        );
    }
}

#[cfg(test)]
mod list_tests {
    use crate::http::api::test_support::*;
    use crate::{ConnId, Frame, Handshake, PAGE_BUDGET_PER_ITEM};
    use serde_json::Value;

    fn list(sb: &mut crate::Switchboard, query: &str) -> Value {
        let r = call(sb, "GET", &format!("/api/connections{query}"), "");
        assert_eq!(
            r.status,
            200,
            "{query}: {}",
            String::from_utf8_lossy(&r.body)
        );
        json(&r)
    }

    fn ids(page: &Value) -> Vec<String> {
        page["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["connId"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every page from the first, following `next`: the ids listed, and the pages' count.
    fn walk(sb: &mut crate::Switchboard, limit: usize) -> (Vec<String>, usize) {
        let (mut all, mut pages) = (Vec::new(), 0);
        let mut query = format!("?limit={limit}");
        loop {
            let page = list(sb, &query);
            pages += 1;
            all.extend(ids(&page));
            match page["next"].as_str() {
                Some(next) => query = format!("?limit={limit}&after={next}"),
                None => return (all, pages),
            }
        }
    }

    #[test]
    fn each_connection_is_listed_as_its_own_query_shows_it_pending_ones_included() {
        let mut sb = new_sb();
        let a = open(&mut sb, "alice", Some("phone"));
        sb.handle_frame(
            now(),
            a,
            Frame::Text(r#"{"type":"subscribe","topic":"chat.*"}"#),
        );
        sb.handle_frame(
            now(),
            a,
            Frame::Text(r#"{"type":"subscribe","topic":"a.b"}"#),
        );
        let pending = sb
            .open(now(), "192.0.2.8".parse().unwrap(), Handshake::default())
            .unwrap();
        let b = open(&mut sb, "bob", None);
        drain(&mut sb);
        let page = list(&mut sb, "");
        assert_eq!(page["next"], Value::Null, "one page holds them all");
        let want: Vec<Value> = [a, pending, b]
            .iter()
            .map(|id| json(&call(&mut sb, "GET", &format!("/api/connections/{id}"), "")))
            .collect();
        assert_eq!(page["connections"], Value::Array(want));
        assert_eq!(
            page["connections"][0]["subscriptions"],
            serde_json::json!(["a.b", "chat.*"])
        );
        assert_eq!(page["connections"][1]["userId"], Value::Null);
    }

    #[test]
    fn an_empty_node_lists_nothing_and_the_endpoint_is_get_only_behind_the_key() {
        let mut sb = new_sb();
        assert_eq!(
            list(&mut sb, ""),
            serde_json::json!({"connections": [], "next": null})
        );
        let r = call(&mut sb, "POST", "/api/connections", "");
        assert_eq!(
            (r.status, r.headers.clone()),
            (405, vec![("Allow", "GET".to_owned())])
        );
        for auth in [None, Some(&b"apikey wrong"[..])] {
            let r = call_auth(&mut sb, Some(KEY), auth, "GET", "/api/connections", "");
            assert_eq!(r.status, 401);
        }
        let r = call_auth(
            &mut sb,
            None,
            Some(b"apikey x"),
            "GET",
            "/api/connections",
            "",
        );
        assert_eq!(r.status, 401, "no key configured: nobody");
    }

    #[test]
    fn pages_follow_next_to_the_end_listing_every_connection_once_in_order() {
        let mut sb = new_sb();
        let opened: Vec<String> = (0..7)
            .map(|i| open(&mut sb, &format!("u{i}"), None).to_string())
            .collect();
        for limit in [1, 2, 3, 7, 1000] {
            let (all, pages) = walk(&mut sb, limit);
            assert_eq!(all, opened, "limit {limit}");
            assert_eq!(
                pages,
                7_usize.div_ceil(limit),
                "limit {limit}: no empty last page"
            );
        }
        let first = list(&mut sb, "?limit=3");
        assert_eq!((ids(&first).len(), first["next"].as_str()), (3, Some("2")));
        let second = list(&mut sb, "?after=2&limit=3");
        assert_eq!(ids(&second), &opened[3..6]);
    }

    #[test]
    fn limit_defaults_to_100_and_takes_1_to_1000() {
        let mut sb = new_sb_with(crate::Config {
            max_connections_per_ip: 2000,
            ..crate::Config::default()
        });
        for i in 0..1001 {
            open(&mut sb, &format!("u{i}"), None);
        }
        let page = list(&mut sb, "");
        assert_eq!((ids(&page).len(), page["next"].as_str()), (100, Some("99")));
        let page = list(&mut sb, "?limit=1");
        assert_eq!((ids(&page).len(), page["next"].as_str()), (1, Some("0")));
        let page = list(&mut sb, "?limit=1000");
        assert_eq!(
            (ids(&page).len(), page["next"].as_str()),
            (1000, Some("999"))
        );
        let page = list(&mut sb, "?limit=1000&after=999");
        assert_eq!((ids(&page).len(), &page["next"]), (1, &Value::Null));
        for bad in [
            "0",
            "1001",
            "-1",
            "1.5",
            "",
            "ten",
            "99999999999999999999999",
        ] {
            let r = call(&mut sb, "GET", &format!("/api/connections?limit={bad}"), "");
            assert_eq!(
                error_of(&r),
                (400, "limit must be an integer from 1 to 1000".into()),
                "limit={bad}"
            );
        }
    }

    #[test]
    fn a_bad_cursor_is_400_and_one_past_the_end_is_an_empty_last_page() {
        let mut sb = new_sb();
        open(&mut sb, "alice", None);
        for bad in ["", "x", "-1", "1.0", "c-0-0", "4294967296", "%zz"] {
            let r = call(&mut sb, "GET", &format!("/api/connections?after={bad}"), "");
            let (status, message) = error_of(&r);
            assert_eq!(status, 400, "after={bad}: {message}");
        }
        let r = call(&mut sb, "GET", "/api/connections?after=x", "");
        assert_eq!(
            error_of(&r).1,
            "invalid cursor: give the `next` of the previous page"
        );
        let r = call(&mut sb, "GET", "/api/connections?after=0&after=0", "");
        assert_eq!(
            error_of(&r),
            (400, "parameter `after` is given twice".into())
        );
        for past in ["0", "5", "4294967295"] {
            assert_eq!(
                list(&mut sb, &format!("?after={past}")),
                serde_json::json!({"connections": [], "next": null}),
                "after={past}"
            );
        }
    }

    #[test]
    fn a_page_examines_a_bounded_number_of_slots_so_free_ones_may_make_it_short() {
        let mut sb = new_sb();
        let opened: Vec<ConnId> = (0..40)
            .map(|i| open(&mut sb, &format!("u{i}"), None))
            .collect();
        for &id in &opened[..39] {
            sb.handle_closed(now(), id);
        }
        drain(&mut sb);
        // 39 free slots, then one connection: a page of limit 1 looks at 8 slots.
        let page = list(&mut sb, "?limit=1");
        let budget = PAGE_BUDGET_PER_ITEM - 1;
        assert_eq!(ids(&page), Vec::<String>::new());
        assert_eq!(page["next"].as_str(), Some(&*budget.to_string()));
        let (all, pages) = walk(&mut sb, 1);
        assert_eq!(all, vec![opened[39].to_string()]);
        assert_eq!(pages, 40_usize.div_ceil(PAGE_BUDGET_PER_ITEM));
    }
}
