//! The HTTP API of SPEC.md (`/api/*`) and `/healthz`, served against the switchboard.

mod auth;
mod disconnect;
mod fields;
mod history;
mod params;
mod publish;
mod queries;
mod send;
#[cfg(test)]
mod test_support;

use serde::Serialize;

use self::auth::check_api_key;
use self::disconnect::disconnect;
use self::fields::Fields;
use self::history::history;
use self::publish::publish;
use self::queries::{connection, connections, presence, stats};
use self::send::{broadcast, send};
use crate::cluster::ClusterStatus;
use crate::http::{HttpResponse, MAX_API_BODY_BYTES};
use crate::protocol::handshake::path_of;
use crate::{Now, Switchboard};

/// An `/api/*` request with its body.
#[derive(Clone, Copy, Debug)]
pub struct ApiRequest<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The request target; its query string is read by `/api/history` and `/api/connections`.
    pub target: &'a str,
    /// The first `Authorization` header's value, if any.
    pub authorization: Option<&'a [u8]>,
    /// The whole body (the adapter read `Content-Length` bytes of it).
    pub body: &'a [u8],
}

/// Why an API request is refused; each variant knows its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ApiError {
    /// No key configured, no or malformed `Authorization`, or a wrong key (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// No such endpoint (404).
    #[error("not found")]
    NotFound,
    /// The endpoint exists but takes another method, named here (405).
    #[error("method not allowed: use {0}")]
    MethodNotAllowed(&'static str),
    /// The body is over [`MAX_API_BODY_BYTES`] (413).
    #[error("request body is larger than {MAX_API_BODY_BYTES} bytes")]
    TooLarge,
    /// A malformed body or parameter; the string names the problem (400).
    #[error("{0}")]
    BadRequest(String),
    /// Not allowed, e.g. publishing to a reserved topic (403).
    #[error("{0}")]
    Forbidden(String),
    /// The connection addressed by `connId` has left, or is not the user's (410).
    #[error("connection is gone")]
    Gone,
    /// The stream position asked for is of another epoch or ahead (410).
    #[error("{0}")]
    StreamGone(String),
}

impl ApiError {
    fn into_response(self) -> HttpResponse {
        let status = match self {
            ApiError::Unauthorized(_) => 401,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::TooLarge => 413,
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden(_) => 403,
            ApiError::Gone | ApiError::StreamGone(_) => 410,
        };
        let response = HttpResponse::error(status, &self.to_string());
        match self {
            ApiError::Unauthorized(_) => response.header("WWW-Authenticate", "apikey"),
            ApiError::MethodNotAllowed(allow) => response.header("Allow", allow),
            _ => response,
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

#[derive(Serialize)]
struct Delivered {
    delivered: usize,
}

fn delivered(n: usize) -> HttpResponse {
    HttpResponse::json(200, &Delivered { delivered: n })
}

/// Serves the HTTP API of SPEC.md against the switchboard. The adapter drains `poll_action`
/// afterwards as after any input.
///
/// Order of checks: the API key (401; `api_key` `None` or empty refuses everyone), then the
/// path (404) and method (405), then the body size (413), then the body (400). A `null` is
/// accepted for `metadata` only (as absent); any other optional field given as `null` is a
/// 400, so that e.g. `"userIds": null` cannot turn into a broadcast to everyone. Unknown body
/// fields are ignored; duplicate ones are a 400. `/api/send` with both `connId` and `deviceId`
/// also requires the connection to be on that device (else 410).
pub fn handle_api(
    sb: &mut Switchboard,
    now: Now,
    api_key: Option<&str>,
    req: &ApiRequest<'_>,
) -> HttpResponse {
    serve(sb, now, api_key, req).unwrap_or_else(ApiError::into_response)
}

/// `/healthz`: 200 `{"status":"ok"}`, or 503 `{"status":"draining"}` once `shutdown` was called.
pub fn health(sb: &Switchboard) -> HttpResponse {
    #[derive(Serialize)]
    struct Health {
        status: &'static str,
    }
    // Degraded is still 200: the node serves its own clients, and a load balancer that took
    // it out of rotation for a Redis outage would take every node out at once.
    let status = match sb.cluster_status() {
        _ if sb.is_draining() => return HttpResponse::json(503, &Health { status: "draining" }),
        ClusterStatus::Degraded => "degraded",
        _ => "ok",
    };
    HttpResponse::json(200, &Health { status })
}

enum Endpoint<'a> {
    Publish,
    Send,
    Broadcast,
    Disconnect,
    Stats,
    /// The raw (still percent-encoded) user id segment.
    Presence(&'a str),
    /// The list of this node's connections.
    Connections,
    /// The raw connection id segment.
    Connection(&'a str),
    /// The raw (still percent-encoded) topic segment.
    History(&'a str),
}

fn serve(
    sb: &mut Switchboard,
    now: Now,
    api_key: Option<&str>,
    req: &ApiRequest<'_>,
) -> Result<HttpResponse, ApiError> {
    check_api_key(api_key, req.authorization)?;
    let rest = path_of(req.target)
        .strip_prefix("/api/")
        .ok_or(ApiError::NotFound)?;
    let endpoint = match rest {
        "publish" => Endpoint::Publish,
        "send" => Endpoint::Send,
        "broadcast" => Endpoint::Broadcast,
        "disconnect" => Endpoint::Disconnect,
        "stats" => Endpoint::Stats,
        "connections" => Endpoint::Connections,
        "presence" => Endpoint::Presence(""),
        _ => match (
            rest.strip_prefix("presence/"),
            rest.strip_prefix("connections/"),
            rest.strip_prefix("history/"),
        ) {
            // A raw `/` is not part of a user id (it would be sent as `%2F`).
            (Some(user), _, _) if !user.contains('/') => Endpoint::Presence(user),
            (_, Some(conn), _) if !conn.is_empty() && !conn.contains('/') => {
                Endpoint::Connection(conn)
            }
            (_, _, Some(topic)) if !topic.contains('/') => Endpoint::History(topic),
            _ => return Err(ApiError::NotFound),
        },
    };
    let want = match endpoint {
        Endpoint::Stats
        | Endpoint::Presence(_)
        | Endpoint::Connections
        | Endpoint::Connection(_)
        | Endpoint::History(_) => "GET",
        _ => "POST",
    };
    if req.method != want {
        return Err(ApiError::MethodNotAllowed(want));
    }
    if req.body.len() > MAX_API_BODY_BYTES {
        return Err(ApiError::TooLarge);
    }
    match endpoint {
        Endpoint::Publish => publish(sb, now, &Fields::parse(req.body)?),
        Endpoint::Send => send(sb, now, &Fields::parse(req.body)?),
        Endpoint::Broadcast => broadcast(sb, now, &Fields::parse(req.body)?),
        Endpoint::Disconnect => disconnect(sb, now, &Fields::parse(req.body)?),
        Endpoint::Stats => Ok(stats(sb)),
        Endpoint::Presence(user) => presence(sb, user),
        Endpoint::Connections => connections(sb, req.target),
        Endpoint::Connection(conn) => connection(sb, conn),
        Endpoint::History(topic) => history(sb, now, topic, req.target),
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::{Action, Instant};

    #[test]
    fn unknown_api_path_is_404_and_wrong_method_405() {
        let mut sb = new_sb();
        for target in [
            "/api/",
            "/api/nope",
            "/api/publish/x",
            "/api/presence/a/b",
            "/apix",
        ] {
            assert_eq!(call(&mut sb, "POST", target, "{}").status, 404, "{target}");
        }
        for (method, target, allow) in [
            ("GET", "/api/publish", "POST"),
            ("PUT", "/api/send", "POST"),
            ("GET", "/api/broadcast", "POST"),
            ("GET", "/api/disconnect", "POST"),
            ("POST", "/api/stats", "GET"),
            ("DELETE", "/api/presence/u1", "GET"),
        ] {
            let r = call(&mut sb, method, target, "{}");
            assert_eq!(r.status, 405, "{method} {target}");
            assert_eq!(r.headers, vec![("Allow", allow.to_owned())]);
        }
    }

    #[test]
    fn body_over_the_limit_is_413() {
        let mut sb = new_sb();
        let body = " ".repeat(MAX_API_BODY_BYTES + 1);
        assert_eq!(call(&mut sb, "POST", "/api/publish", &body).status, 413);
    }

    #[test]
    fn malformed_bodies_are_400_naming_the_problem() {
        let mut sb = new_sb();
        for (body, want) in [
            ("", "missing JSON body"),
            ("  ", "missing JSON body"),
            ("[1]", "request body must be a JSON object"),
            ("null", "request body must be a JSON object"),
            ("{", "invalid JSON body: "),
            ("{\"topic\":\"a\",}", "invalid JSON body: "),
            (
                "{\"topic\":\"a\",\"topic\":\"b\",\"data\":1}",
                "duplicate field `topic`",
            ),
            ("{\"data\":1}", "missing field `topic`"),
            ("{\"topic\":\"a\"}", "missing field `data`"),
            ("{\"topic\":5,\"data\":1}", "field `topic` must be a string"),
            (
                "{\"topic\":null,\"data\":1}",
                "field `topic` must be a string",
            ),
            (
                "{\"topic\":\"\\ud800\",\"data\":1}",
                "field `topic` is not a valid string",
            ),
            ("{\"topic\":\"a.*\",\"data\":1}", "invalid topic: "),
            (
                "{\"topic\":\"a\",\"data\":1,\"metadata\":[1]}",
                "metadata must be a JSON object",
            ),
        ] {
            let r = call(&mut sb, "POST", "/api/publish", body);
            let (status, message) = error_of(&r);
            assert_eq!(status, 400, "{body}: {message}");
            assert!(message.contains(want), "{body}: {message}");
        }
    }

    #[test]
    fn health_is_degraded_until_a_cluster_node_joins_and_while_its_bus_is_lost() {
        use crate::cluster::{
            BusAction, BusEvent, ClusterConfig, NodeId, NodeIdentity, Subscription,
        };
        let identity = NodeIdentity::new(NodeId::new("a").unwrap(), 1);
        let mut sb = new_sb().with_cluster(ClusterConfig::new(identity));
        let body = |sb: &Switchboard| {
            let r = health(sb);
            (r.status, String::from_utf8(r.body.to_vec()).unwrap())
        };
        let degraded = (200, r#"{"status":"degraded"}"#.to_owned());
        assert_eq!(body(&sb), degraded);
        sb.handle_bus(now(), BusEvent::Up);
        let subscribed: Vec<_> = drain(&mut sb)
            .into_iter()
            .filter_map(|a| match a {
                Action::Bus(BusAction::Subscribe(s)) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(subscribed, [Subscription::Members, Subscription::Commands]);
        assert_eq!(body(&sb), degraded, "not joined before the bus confirmed");
        sb.handle_bus(now(), BusEvent::Subscribed(Subscription::Members));
        sb.handle_bus(now(), BusEvent::Subscribed(Subscription::Commands));
        assert_eq!(body(&sb), (200, r#"{"status":"ok"}"#.to_owned()));
        sb.handle_bus(now(), BusEvent::Lost);
        assert_eq!(body(&sb), degraded);
    }

    #[test]
    fn health_is_200_then_503_after_shutdown() {
        let mut sb = new_sb();
        let r = health(&sb);
        assert_eq!((r.status, &r.body[..]), (200, &br#"{"status":"ok"}"#[..]));
        sb.shutdown(now(), Instant::from_millis(5_000));
        let r = health(&sb);
        assert_eq!(
            (r.status, &r.body[..]),
            (503, &br#"{"status":"draining"}"#[..])
        );
        assert_eq!(
            json(&call(&mut sb, "GET", "/api/stats", ""))["draining"],
            true
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_requests_never_panic(
            method in "(GET|POST|PUT)",
            target in "/api/(publish|send|broadcast|disconnect|stats|presence/|connections)?[%a-z0-9/?=&]{0,12}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let mut sb = new_sb();
            open(&mut sb, "alice", Some("phone"));
            let auth = format!("apikey {KEY}");
            let _ = call_auth(&mut sb, Some(KEY), Some(auth.as_bytes()), &method, &target, &String::from_utf8_lossy(&body));
        }

        #[test]
        fn arbitrary_json_fields_never_panic(
            endpoint in "(publish|send|broadcast|disconnect)",
            fields in proptest::collection::vec(
                ("(topic|data|metadata|userId|deviceId|connId|userIds|code|reason)",
                 "(null|1|-1|1e400|\"\"|\"a\"|\"c-0-0\"|\\[\\]|\\[\"alice\"\\]|\\{\\}|4000|99999999999999999999|\"\\\\ud800\")"),
                0..6),
        ) {
            let mut sb = new_sb();
            open(&mut sb, "alice", Some("phone"));
            let mut seen = std::collections::HashSet::new();
            let body: Vec<String> = fields
                .iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            let body = format!("{{{}}}", body.join(","));
            let r = call(&mut sb, "POST", &format!("/api/{endpoint}"), &body);
            proptest::prop_assert!(matches!(r.status, 200 | 400 | 403 | 410), "{} {body}", r.status);
        }
    }
}
