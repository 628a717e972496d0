//! The HTTP API of SPEC.md (`/api/*`) and `/healthz`, served against the switchboard.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::http::request::path_of;
use crate::http::{HttpResponse, MAX_API_BODY_BYTES};
use crate::protocol::percent::{self, Plus};
use crate::protocol::{validate_device_id, write_timestamp};
use crate::{CloseCode, ConnId, Now, PublishError, Stats, Switchboard};

/// Close code of `/api/disconnect` without `code`: policy, "do not reconnect automatically".
const DEFAULT_DISCONNECT_CODE: u16 = 1008;

/// Close reason of `/api/disconnect` without `reason`.
const DEFAULT_DISCONNECT_REASON: &str = "disconnected by server";

/// A close frame's payload is at most 125 bytes, two of which carry the code.
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// An `/api/*` request with its body.
#[derive(Clone, Copy, Debug)]
pub struct ApiRequest<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The request target; a query string is ignored.
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
            ApiError::Gone => 410,
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
    if sb.is_draining() {
        HttpResponse::json(503, &Health { status: "draining" })
    } else {
        HttpResponse::json(200, &Health { status: "ok" })
    }
}

enum Endpoint<'a> {
    Publish,
    Send,
    Broadcast,
    Disconnect,
    Stats,
    /// The raw (still percent-encoded) user id segment.
    Presence(&'a str),
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
        "presence" => Endpoint::Presence(""),
        _ => match rest.strip_prefix("presence/") {
            // A raw `/` is not part of a user id (it would be sent as `%2F`).
            Some(user) if !user.contains('/') => Endpoint::Presence(user),
            _ => return Err(ApiError::NotFound),
        },
    };
    let want = match endpoint {
        Endpoint::Stats | Endpoint::Presence(_) => "GET",
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
    }
}

// ---- authorization ------------------------------------------------------------------------

fn check_api_key(api_key: Option<&str>, header: Option<&[u8]>) -> Result<(), ApiError> {
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

// ---- body fields ---------------------------------------------------------------------------

/// A JSON object body, each field kept as raw JSON so that `data` reaches clients exactly as
/// received and each field's type error can name the field.
struct Fields<'a>(BTreeMap<String, &'a RawValue>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    if fields.contains_key(&key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate field `{key}`"
                        )));
                    }
                    fields.insert(key, value);
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

impl<'a> Fields<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, ApiError> {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Err(bad("missing JSON body")),
            Some(b'{') => {}
            Some(_) => return Err(bad("request body must be a JSON object")),
        }
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))
    }

    /// A field given with any value, `null` included.
    fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.0.get(name).copied()
    }

    fn required_raw(&self, name: &str) -> Result<&'a RawValue, ApiError> {
        self.raw(name)
            .ok_or_else(|| bad(format!("missing field `{name}`")))
    }

    fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        self.raw(name)
            .map(|raw| {
                serde_json::from_str::<String>(raw.get()).map_err(|e| {
                    if raw.get().starts_with('"') {
                        bad(format!("field `{name}` is not a valid string: {e}"))
                    } else {
                        bad(format!("field `{name}` must be a string"))
                    }
                })
            })
            .transpose()
    }

    fn required_string(&self, name: &str) -> Result<String, ApiError> {
        self.string(name)?
            .ok_or_else(|| bad(format!("missing field `{name}`")))
    }

    /// A required, non-empty user id.
    fn user_id(&self) -> Result<String, ApiError> {
        let user = self.required_string("userId")?;
        if user.is_empty() {
            return Err(bad("field `userId` must not be empty"));
        }
        Ok(user)
    }

    /// An optional device id, checked like the handshake's `device`.
    fn device_id(&self) -> Result<Option<String>, ApiError> {
        let device = self.string("deviceId")?;
        if let Some(d) = &device {
            validate_device_id(d).map_err(|e| bad(format!("field `deviceId`: {e}")))?;
        }
        Ok(device)
    }
}

// ---- endpoints -----------------------------------------------------------------------------

#[derive(Serialize)]
struct Delivered {
    delivered: usize,
}

fn delivered(n: usize) -> HttpResponse {
    HttpResponse::json(200, &Delivered { delivered: n })
}

fn publish(sb: &mut Switchboard, now: Now, f: &Fields<'_>) -> Result<HttpResponse, ApiError> {
    let topic = f.required_string("topic")?;
    let data = f.required_raw("data")?;
    let metadata = f.raw("metadata").filter(|m| m.get() != "null");
    match sb.publish(now, &topic, data, metadata) {
        Ok(n) => Ok(delivered(n)),
        Err(e @ PublishError::ReservedTopic) => Err(ApiError::Forbidden(e.to_string())),
        Err(e @ PublishError::InvalidTopic(_)) => Err(bad(format!("invalid topic: {e}"))),
        Err(e) => Err(bad(e.to_string())),
    }
}

fn send(sb: &mut Switchboard, now: Now, f: &Fields<'_>) -> Result<HttpResponse, ApiError> {
    let user = f.user_id()?;
    let device = f.device_id()?;
    let conn = f.string("connId")?;
    let data = f.required_raw("data")?;
    if let Some(conn) = conn {
        let id: ConnId = conn.parse().map_err(|_| {
            bad("field `connId` is not a connection id (expected `c-<index>-<generation>`)")
        })?;
        // Addressed to this user (and device): another user's connection is, to this caller,
        // as gone as a closed one.
        let info = sb.connection(id).ok_or(ApiError::Gone)?;
        let on_device = match &device {
            Some(d) => info.device() == Some(d.as_str()),
            None => true,
        };
        if info.user() != Some(user.as_str()) || !on_device {
            return Err(ApiError::Gone);
        }
        sb.send_to_connection(now, id, data)
            .map_err(|_| ApiError::Gone)?;
        return Ok(delivered(1));
    }
    let n = match &device {
        Some(d) => sb.send_to_device(now, &user, d, data),
        None => sb.send_to_user(now, &user, data),
    };
    Ok(delivered(n))
}

fn broadcast(sb: &mut Switchboard, now: Now, f: &Fields<'_>) -> Result<HttpResponse, ApiError> {
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

fn disconnect(sb: &mut Switchboard, now: Now, f: &Fields<'_>) -> Result<HttpResponse, ApiError> {
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsBody {
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
}

fn stats(sb: &Switchboard) -> HttpResponse {
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
        },
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PresenceBody<'a> {
    user_id: &'a str,
    online: bool,
    connections: Vec<PresenceConnection<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PresenceConnection<'a> {
    conn_id: String,
    device_id: Option<&'a str>,
    device_name: Option<&'a str>,
    user_agent: Option<&'a str>,
    ip: String,
    connected_at: String,
}

fn presence(sb: &Switchboard, raw_user: &str) -> Result<HttpResponse, ApiError> {
    let user = percent::decode(raw_user, Plus::Literal)
        .ok()
        .ok_or_else(|| bad("user id in the path is not valid percent-encoded UTF-8"))?;
    if user.is_empty() {
        return Err(bad("missing user id: use /api/presence/{userId}"));
    }
    let connections = sb
        .user_connections(&user)
        .iter()
        .filter_map(|&id| sb.connection(id))
        .map(|info| {
            let mut at = Vec::with_capacity(24);
            write_timestamp(&mut at, info.connected_at_unix_millis());
            PresenceConnection {
                conn_id: info.id().to_string(),
                device_id: info.device(),
                device_name: info.device_name(),
                user_agent: info.user_agent(),
                ip: info.ip().to_string(),
                connected_at: String::from_utf8_lossy(&at).into_owned(),
            }
        })
        .collect();
    Ok(HttpResponse::json(
        200,
        &PresenceBody {
            user_id: &user,
            online: sb.is_online(&user),
            connections,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{sign_hs256, Claims, Hs256Verifier};
    use crate::{Action, Config, Frame, Handshake, Instant};

    const SECRET: &[u8] = b"api-test-secret";
    const KEY: &str = "s3cret-key";
    const T0: u64 = 1_795_428_000_123;

    fn now() -> Now {
        Now::new(Instant::ZERO, T0)
    }

    fn new_sb() -> Switchboard {
        Switchboard::new(Config::default(), Hs256Verifier::new(SECRET))
    }

    fn open(sb: &mut Switchboard, user: &str, device: Option<&str>) -> ConnId {
        let token = sign_hs256(
            SECRET,
            &Claims {
                sub: user.into(),
                exp: T0 / 1000 + 3600,
                device: None,
                topics: None,
            },
        );
        let hs = Handshake {
            token: Some(token),
            device: device.map(Into::into),
            device_name: device.map(|d| format!("{d} name")),
            user_agent: Some("agent/1".into()),
        };
        let id = sb.open(now(), "192.0.2.7".parse().unwrap(), hs).unwrap();
        drain(sb);
        id
    }

    fn drain(sb: &mut Switchboard) -> Vec<Action> {
        std::iter::from_fn(|| sb.poll_action()).collect()
    }

    fn call(sb: &mut Switchboard, method: &str, target: &str, body: &str) -> HttpResponse {
        let auth = format!("apikey {KEY}");
        call_auth(sb, Some(KEY), Some(auth.as_bytes()), method, target, body)
    }

    fn call_auth(
        sb: &mut Switchboard,
        key: Option<&str>,
        auth: Option<&[u8]>,
        method: &str,
        target: &str,
        body: &str,
    ) -> HttpResponse {
        let req = ApiRequest {
            method,
            target,
            authorization: auth,
            body: body.as_bytes(),
        };
        handle_api(sb, now(), key, &req)
    }

    fn json(r: &HttpResponse) -> serde_json::Value {
        assert_eq!(r.content_type, "application/json");
        serde_json::from_slice(&r.body).unwrap()
    }

    fn error_of(r: &HttpResponse) -> (u16, String) {
        let v = json(r);
        assert_eq!(v["error"]["code"], r.status);
        (r.status, v["error"]["message"].as_str().unwrap().to_owned())
    }

    fn sends(actions: &[Action]) -> Vec<(ConnId, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { conn, payload } => {
                    Some((*conn, String::from_utf8(payload.to_vec()).unwrap()))
                }
                _ => None,
            })
            .collect()
    }

    // ---- authorization ----

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

    // ---- routing ----

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

    // ---- publish ----

    #[test]
    fn publish_reaches_a_subscriber_byte_exact_as_server() {
        let mut sb = new_sb();
        let c = open(&mut sb, "alice", None);
        sb.handle_frame(
            now(),
            c,
            Frame::Text(r#"{"type":"subscribe","topic":"chat.*"}"#),
        );
        drain(&mut sb);
        let r = call(
            &mut sb,
            "POST",
            "/api/publish?ignored=1",
            r#"{"topic":"chat.room1","data":{"n":1.000000000000000000001,"s":"\u00e9"},"metadata":{"senderId":"forged","k":"v"}}"#,
        );
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], br#"{"delivered":1}"#);
        let sent = sends(&drain(&mut sb));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, c);
        let payload = &sent[0].1;
        assert!(
            payload.contains(r#"{"n":1.000000000000000000001,"s":"\u00e9"}"#),
            "{payload}"
        );
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["topic"], "chat.room1");
        assert_eq!(v["metadata"]["senderId"], "server");
        assert_eq!(v["metadata"]["k"], "v");
    }

    #[test]
    fn publish_accepts_null_data_and_null_metadata() {
        let mut sb = new_sb();
        let c = open(&mut sb, "alice", None);
        sb.handle_frame(now(), c, Frame::Text(r#"{"type":"subscribe","topic":"a"}"#));
        drain(&mut sb);
        let r = call(
            &mut sb,
            "POST",
            "/api/publish",
            r#"{"topic":"a","data":null,"metadata":null}"#,
        );
        assert_eq!(json(&r), serde_json::json!({"delivered": 1}));
        let sent = sends(&drain(&mut sb));
        let v: serde_json::Value = serde_json::from_str(&sent[0].1).unwrap();
        assert!(v["data"].is_null());
        assert_eq!(v["metadata"]["senderId"], "server");
    }

    #[test]
    fn publish_without_subscribers_delivers_zero() {
        let mut sb = new_sb();
        let r = call(
            &mut sb,
            "POST",
            "/api/publish",
            r#"{"topic":"x.y","data":1}"#,
        );
        assert_eq!(json(&r), serde_json::json!({"delivered": 0}));
    }

    #[test]
    fn publish_to_a_presence_topic_is_403() {
        let mut sb = new_sb();
        let r = call(
            &mut sb,
            "POST",
            "/api/publish",
            r#"{"topic":"presence.alice","data":1}"#,
        );
        assert_eq!(
            error_of(&r),
            (403, "presence topics are reserved".to_owned())
        );
    }

    // ---- send ----

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

    // ---- broadcast ----

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

    // ---- presence ----

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

    // ---- disconnect ----

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
                Action::Close { conn, code, reason } => Some((conn, code, reason)),
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
            reason: "bye".into()
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

    // ---- stats and health ----

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
            target in "/api/(publish|send|broadcast|disconnect|stats|presence/)?[%a-z0-9/?]{0,12}",
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
