//! Test helpers of the API: a switchboard with connections, and calls through `handle_api`.

use super::{handle_api, ApiRequest};
use crate::auth::{sign_hs256, Claims, Hs256Verifier};
use crate::http::HttpResponse;
use crate::{Action, Config, ConnId, Handshake, Instant, Now, Switchboard};

pub(super) const SECRET: &[u8] = b"api-test-secret";
pub(super) const KEY: &str = "s3cret-key";
pub(super) const T0: u64 = 1_795_428_000_123;

pub(super) fn now() -> Now {
    Now::new(Instant::ZERO, T0)
}

pub(super) fn new_sb() -> Switchboard {
    new_sb_with(Config::default())
}

pub(super) fn new_sb_with(config: Config) -> Switchboard {
    Switchboard::new(config, Hs256Verifier::new(SECRET), 1)
}

pub(super) fn open(sb: &mut Switchboard, user: &str, device: Option<&str>) -> ConnId {
    let token = sign_hs256(
        SECRET,
        &Claims {
            sub: user.into(),
            exp: T0 / 1000 + 3600,
            device: None,
            topics: None,
            info: None,
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

pub(super) fn drain(sb: &mut Switchboard) -> Vec<Action> {
    std::iter::from_fn(|| sb.poll_action()).collect()
}

pub(super) fn call(sb: &mut Switchboard, method: &str, target: &str, body: &str) -> HttpResponse {
    let auth = format!("apikey {KEY}");
    call_auth(sb, Some(KEY), Some(auth.as_bytes()), method, target, body)
}

pub(super) fn call_auth(
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

pub(super) fn json(r: &HttpResponse) -> serde_json::Value {
    assert_eq!(r.content_type, "application/json");
    serde_json::from_slice(&r.body).unwrap()
}

pub(super) fn error_of(r: &HttpResponse) -> (u16, String) {
    let v = json(r);
    assert_eq!(v["error"]["code"], r.status);
    (r.status, v["error"]["message"].as_str().unwrap().to_owned())
}

pub(super) fn sends(actions: &[Action]) -> Vec<(ConnId, String)> {
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
