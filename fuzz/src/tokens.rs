//! `tokens`: arbitrary strings, JWT-shaped `a.b.c` strings, and tokens properly signed over
//! arbitrary JSON, into `Hs256Verifier::verify`. It must never panic; a properly signed token
//! must verify exactly when its claims are valid per PROTOCOL.md; any change to a signed token
//! must make it fail.

use arbitrary::Arbitrary;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Map, Value};
use switchboard_core::auth::{sign_hs256, AuthError, Claims, Hs256Verifier, Verifier};

use crate::check::b64url;
use crate::enc::{pick, Bytes, Encode, Encoder, Text};
use crate::frames::{Json, Str};

const SECRET: &[u8] = b"tokens-secret";
const ALGS: [&str; 7] = ["HS256", "none", "HS384", "hs256", "RS256", "", "HS256 "];
const KEYS: [&str; 9] = [
    "sub", "exp", "device", "topics", "info", "alg", "typ", "nbf", "iat",
];
const B64_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";

/// One segment of a hand-built `a.b.c` string.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Part {
    /// As is.
    Text(Text),
    /// Base64url of arbitrary bytes.
    B64(Bytes),
    /// Base64url of a JSON value.
    B64Json(Json),
    /// Base64url of `{"alg":<ALGS[i]>}`.
    Header(u8),
}

impl Part {
    fn render(&self) -> String {
        match self {
            Part::Text(t) => t.0.clone(),
            Part::B64(b) => b64url(&b.0),
            Part::B64Json(j) => b64url(j.to_value().to_string().as_bytes()),
            Part::Header(i) => b64url(json!({"alg": pick(&ALGS, *i)}).to_string().as_bytes()),
        }
    }
}

/// The JOSE header of a signed token.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Header {
    /// `{"alg":"HS256","typ":"JWT"}`.
    Hs256,
    /// `{"alg":<ALGS[i]>}` plus arbitrary members.
    Alg(u8, Vec<(u8, Json)>),
    /// Any JSON value.
    Any(Json),
}

/// A claim value.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Claim {
    /// A string of exactly this many bytes (0, 1, 128, 129 are the edges).
    Len(u8),
    /// A string.
    Str(Str),
    /// An integer.
    U64(u64),
    /// An array of strings, or of anything.
    Strings(Vec<Str>),
    /// Any JSON value.
    Any(Json),
}

impl Claim {
    fn render(&self) -> Value {
        match self {
            Claim::Len(n) => Value::String("s".repeat(usize::from(*n))),
            Claim::Str(s) => Value::String(s.render_any()),
            Claim::U64(n) => json!(n),
            Claim::Strings(v) => {
                Value::Array(v.iter().map(|s| Value::String(s.render_any())).collect())
            }
            Claim::Any(j) => j.to_value(),
        }
    }
}

/// The payload of a signed token.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Payload {
    /// Claims, each present or not.
    Claims {
        sub: Option<Claim>,
        exp: Option<Claim>,
        device: Option<Claim>,
        topics: Option<Claim>,
        extra: Vec<(u8, Json)>,
    },
    /// Any JSON value.
    Any(Json),
    /// Arbitrary bytes (duplicate keys, bad UTF-8, not JSON).
    Raw(Bytes),
}

impl Payload {
    fn render(&self) -> Vec<u8> {
        match self {
            Payload::Claims {
                sub,
                exp,
                device,
                topics,
                extra,
            } => {
                let mut m = Map::new();
                for (k, v) in extra {
                    m.insert(pick(&KEYS, *k).to_owned(), v.to_value());
                }
                for (name, claim) in [
                    ("sub", sub),
                    ("exp", exp),
                    ("device", device),
                    ("topics", topics),
                ] {
                    if let Some(c) = claim {
                        m.insert(name.to_owned(), c.render());
                    }
                }
                Value::Object(m).to_string().into_bytes()
            }
            Payload::Any(j) => j.to_value().to_string().into_bytes(),
            Payload::Raw(b) => b.0.clone(),
        }
    }
}

/// The whole input.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Input {
    /// Any string.
    Raw(Text),
    /// Segments joined with dots (any number of them).
    Parts(Vec<Part>),
    /// A token signed over a header and payload built here, maybe changed afterwards.
    Signed {
        header: Header,
        payload: Payload,
        wrong_secret: bool,
        /// Replace the character at this position (mod length) by `B64_CHARS[c]`.
        tamper: Option<(u16, u8)>,
    },
    /// Typed claims through the core's own `sign_hs256`.
    Typed {
        sub: Claim,
        exp: u64,
        device: Option<Str>,
        topics: Option<Vec<Str>>,
    },
}

trait Render {
    fn to_value(&self) -> Value;
}
impl Render for Json {
    fn to_value(&self) -> Value {
        self.render()
    }
}

trait RenderStr {
    fn render_any(&self) -> String;
}
impl RenderStr for Str {
    fn render_any(&self) -> String {
        self.render(&["u1", "alice@example.com", "a.*", "d-1", "", "\u{e9}"])
    }
}

/// What PROTOCOL.md says the claims of an authentic token are, or `None` when it must be
/// refused. Written from the protocol text, independently of `auth.rs`.
fn expected_claims(payload: &[u8]) -> Option<Claims> {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(payload) else {
        return None;
    };
    let sub = match m.get("sub") {
        Some(Value::String(s)) if (1..=128).contains(&s.len()) => s.clone(),
        _ => return None,
    };
    let exp = m.get("exp")?.as_u64()?;
    let device = match m.get("device") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return None,
    };
    let topics = match m.get("topics") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()?,
        ),
        Some(_) => return None,
    };
    let info = match m.get("info") {
        None => None,
        Some(Value::Object(info)) => Some(info.clone()),
        Some(_) => return None,
    };
    Some(Claims {
        sub,
        exp,
        device,
        topics,
        info,
    })
}

fn check_ok(result: &Result<Claims, AuthError>) {
    if let Ok(c) = result {
        assert!(
            (1..=128).contains(&c.sub.len()),
            "accepted a sub of {} bytes",
            c.sub.len()
        );
    }
}

/// Drives one input; panics when an oracle fails.
pub fn run(input: &Input) {
    let verifier = Hs256Verifier::new(SECRET);
    let verify = |token: &str| {
        let result = verifier.verify(token, 1_795_428_000_000);
        check_ok(&result);
        // Pure: the same token gives the same answer.
        assert_eq!(
            result,
            verifier.verify(token, 0),
            "verify is not deterministic"
        );
        result
    };
    match input {
        Input::Raw(t) => {
            let _ = verify(&t.0);
        }
        Input::Parts(parts) => {
            let token = parts.iter().map(Part::render).collect::<Vec<_>>().join(".");
            let result = verify(&token);
            if parts.len() != 3 {
                assert!(
                    result.is_err(),
                    "{} segments accepted: {token}",
                    parts.len()
                );
            }
        }
        Input::Signed {
            header,
            payload,
            wrong_secret,
            tamper,
        } => {
            let header = match header {
                Header::Hs256 => json!({"alg": "HS256", "typ": "JWT"}),
                Header::Alg(i, extra) => {
                    let mut m = Map::new();
                    for (k, v) in extra {
                        m.insert(pick(&KEYS, *k).to_owned(), v.to_value());
                    }
                    m.insert("alg".into(), Value::String(pick(&ALGS, *i).into()));
                    Value::Object(m)
                }
                Header::Any(j) => j.to_value(),
            };
            let payload_bytes = payload.render();
            let message = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(&payload_bytes)
            );
            let secret: &[u8] = if *wrong_secret {
                b"another secret"
            } else {
                SECRET
            };
            let signature = jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(secret),
                Algorithm::HS256,
            )
            .expect("HMAC signing cannot fail");
            let token = format!("{message}.{signature}");
            let result = verify(&token);
            let expected = match header.get("alg") {
                Some(Value::String(a)) if a == "HS256" => {
                    if *wrong_secret {
                        Err(AuthError::BadSignature)
                    } else {
                        expected_claims(&payload_bytes).ok_or(AuthError::Malformed)
                    }
                }
                Some(Value::String(_)) => Err(AuthError::WrongAlgorithm),
                _ => Err(AuthError::Malformed),
            };
            match (&expected, &result) {
                (Ok(want), Ok(got)) => assert_eq!(want, got, "claims of {token}"),
                (Err(AuthError::WrongAlgorithm), r) => {
                    assert_eq!(r, &Err(AuthError::WrongAlgorithm), "alg of {header}")
                }
                (Err(AuthError::BadSignature), r) => {
                    assert_eq!(r, &Err(AuthError::BadSignature), "{token}")
                }
                (Err(_), r) => assert!(r.is_err(), "accepted {token}: {r:?}"),
                (Ok(want), r) => panic!("refused {token} ({want:?}): {r:?}"),
            }
            if let Some((pos, c)) = tamper {
                let mut bytes = token.clone().into_bytes();
                let i = usize::from(*pos) % bytes.len();
                bytes[i] = B64_CHARS[usize::from(*c) % B64_CHARS.len()];
                let tampered = String::from_utf8(bytes).expect("ASCII");
                let result = verify(&tampered);
                if tampered != token {
                    assert!(
                        result.is_err(),
                        "a changed token verified: {tampered} from {token}"
                    );
                }
            }
        }
        Input::Typed {
            sub,
            exp,
            device,
            topics,
        } => {
            let Value::String(sub) = sub.render() else {
                return;
            };
            let claims = Claims {
                sub,
                exp: *exp,
                device: device.as_ref().map(Str::render_any),
                topics: topics
                    .as_ref()
                    .map(|t| t.iter().map(Str::render_any).collect()),
                info: None,
            };
            let token = sign_hs256(SECRET, &claims);
            let result = verify(&token);
            if (1..=128).contains(&claims.sub.len()) {
                assert_eq!(result, Ok(claims), "round trip of {token}");
            } else {
                assert!(result.is_err(), "accepted {token}");
            }
        }
    }
}

// ---- seeds --------------------------------------------------------------------------------

impl Encode for Part {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Part::Text(t) => {
                e.tag(0, 4);
                t.encode(e);
            }
            Part::B64(b) => {
                e.tag(1, 4);
                b.encode(e);
            }
            Part::B64Json(j) => {
                e.tag(2, 4);
                j.encode(e);
            }
            Part::Header(i) => {
                e.tag(3, 4);
                i.encode(e);
            }
        }
    }
}

impl Encode for Header {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Header::Hs256 => e.tag(0, 3),
            Header::Alg(i, extra) => {
                e.tag(1, 3);
                i.encode(e);
                extra.encode(e);
            }
            Header::Any(j) => {
                e.tag(2, 3);
                j.encode(e);
            }
        }
    }
}

impl Encode for Claim {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Claim::Len(n) => {
                e.tag(0, 5);
                n.encode(e);
            }
            Claim::Str(s) => {
                e.tag(1, 5);
                s.encode(e);
            }
            Claim::U64(n) => {
                e.tag(2, 5);
                n.encode(e);
            }
            Claim::Strings(v) => {
                e.tag(3, 5);
                v.encode(e);
            }
            Claim::Any(j) => {
                e.tag(4, 5);
                j.encode(e);
            }
        }
    }
}

impl Encode for Payload {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Payload::Claims {
                sub,
                exp,
                device,
                topics,
                extra,
            } => {
                e.tag(0, 3);
                sub.encode(e);
                exp.encode(e);
                device.encode(e);
                topics.encode(e);
                extra.encode(e);
            }
            Payload::Any(j) => {
                e.tag(1, 3);
                j.encode(e);
            }
            Payload::Raw(b) => {
                e.tag(2, 3);
                b.encode(e);
            }
        }
    }
}

impl Encode for Input {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Input::Raw(t) => {
                e.tag(0, 4);
                t.encode(e);
            }
            Input::Parts(p) => {
                e.tag(1, 4);
                p.encode(e);
            }
            Input::Signed {
                header,
                payload,
                wrong_secret,
                tamper,
            } => {
                e.tag(2, 4);
                header.encode(e);
                payload.encode(e);
                wrong_secret.encode(e);
                tamper.encode(e);
            }
            Input::Typed {
                sub,
                exp,
                device,
                topics,
            } => {
                e.tag(3, 4);
                sub.encode(e);
                exp.encode(e);
                device.encode(e);
                topics.encode(e);
            }
        }
    }
}

/// Seed inputs: every claim check, every header check, and malformed shapes.
pub fn seeds() -> Vec<(String, Input)> {
    let claims = |sub: Option<Claim>, exp: Option<Claim>, device, topics| Payload::Claims {
        sub,
        exp,
        device,
        topics,
        extra: vec![],
    };
    let good = || {
        claims(
            Some(Claim::Len(5)),
            Some(Claim::U64(2_000_000_000)),
            None,
            None,
        )
    };
    let signed = |header, payload, tamper| Input::Signed {
        header,
        payload,
        wrong_secret: false,
        tamper,
    };
    let mut out: Vec<(&str, Input)> = vec![
        ("raw_empty", Input::Raw(Text::from(""))),
        ("raw_dots", Input::Raw(Text::from("a.b.c"))),
        (
            "parts_header_only",
            Input::Parts(vec![
                Part::Header(0),
                Part::Text(Text::from("")),
                Part::Text(Text::from("")),
            ]),
        ),
        (
            "parts_four",
            Input::Parts(vec![
                Part::Header(0),
                Part::B64(Bytes(b"{}".to_vec())),
                Part::Text(Text::from("x")),
                Part::Text(Text::from("y")),
            ]),
        ),
        (
            "parts_bad_b64",
            Input::Parts(vec![
                Part::Text(Text::from("e")),
                Part::Text(Text::from("!!")),
                Part::Text(Text::from("x")),
            ]),
        ),
        (
            "parts_alg_none",
            Input::Parts(vec![
                Part::Header(1),
                Part::B64Json(Json::Object(vec![])),
                Part::Text(Text::from("")),
            ]),
        ),
        ("signed_good", signed(Header::Hs256, good(), None)),
        (
            "signed_tampered",
            signed(Header::Hs256, good(), Some((20, 3))),
        ),
        (
            "signed_tampered_sig",
            signed(Header::Hs256, good(), Some((u16::MAX, 0))),
        ),
        (
            "signed_wrong_secret",
            Input::Signed {
                header: Header::Hs256,
                payload: good(),
                wrong_secret: true,
                tamper: None,
            },
        ),
        (
            "signed_alg_none",
            signed(Header::Alg(1, vec![]), good(), None),
        ),
        (
            "signed_alg_hs384",
            signed(
                Header::Alg(2, vec![(5, Json::Str(Str::Pick(0)))]),
                good(),
                None,
            ),
        ),
        (
            "signed_header_not_object",
            signed(Header::Any(Json::Int(3)), good(), None),
        ),
        (
            "signed_no_sub",
            signed(
                Header::Hs256,
                claims(None, Some(Claim::U64(1)), None, None),
                None,
            ),
        ),
        (
            "signed_sub_empty",
            signed(
                Header::Hs256,
                claims(Some(Claim::Len(0)), Some(Claim::U64(1)), None, None),
                None,
            ),
        ),
        (
            "signed_sub_128",
            signed(
                Header::Hs256,
                claims(Some(Claim::Len(128)), Some(Claim::U64(1)), None, None),
                None,
            ),
        ),
        (
            "signed_sub_129",
            signed(
                Header::Hs256,
                claims(Some(Claim::Len(129)), Some(Claim::U64(1)), None, None),
                None,
            ),
        ),
        (
            "signed_sub_number",
            signed(
                Header::Hs256,
                claims(Some(Claim::U64(7)), Some(Claim::U64(1)), None, None),
                None,
            ),
        ),
        (
            "signed_no_exp",
            signed(
                Header::Hs256,
                claims(Some(Claim::Len(1)), None, None, None),
                None,
            ),
        ),
        (
            "signed_exp_float",
            signed(
                Header::Hs256,
                claims(
                    Some(Claim::Len(1)),
                    Some(Claim::Any(Json::Float(1.5f64.to_bits()))),
                    None,
                    None,
                ),
                None,
            ),
        ),
        (
            "signed_exp_negative",
            signed(
                Header::Hs256,
                claims(
                    Some(Claim::Len(1)),
                    Some(Claim::Any(Json::Int(-1))),
                    None,
                    None,
                ),
                None,
            ),
        ),
        (
            "signed_device",
            signed(
                Header::Hs256,
                claims(
                    Some(Claim::Len(1)),
                    Some(Claim::U64(1)),
                    Some(Claim::Str(Str::Pick(3))),
                    None,
                ),
                None,
            ),
        ),
        (
            "signed_device_null",
            signed(
                Header::Hs256,
                claims(
                    Some(Claim::Len(1)),
                    Some(Claim::U64(1)),
                    Some(Claim::Any(Json::Null)),
                    None,
                ),
                None,
            ),
        ),
        (
            "signed_topics",
            signed(
                Header::Hs256,
                claims(
                    Some(Claim::Len(1)),
                    Some(Claim::U64(1)),
                    None,
                    Some(Claim::Strings(vec![Str::Pick(2), Str::Pick(0)])),
                ),
                None,
            ),
        ),
        (
            "signed_topics_mixed",
            signed(
                Header::Hs256,
                claims(
                    Some(Claim::Len(1)),
                    Some(Claim::U64(1)),
                    None,
                    Some(Claim::Any(Json::Array(vec![crate::frames::Leaf::Int(1)]))),
                ),
                None,
            ),
        ),
        (
            "signed_payload_array",
            signed(Header::Hs256, Payload::Any(Json::Array(vec![])), None),
        ),
        (
            "signed_payload_dup",
            signed(
                Header::Hs256,
                Payload::Raw(Bytes(br#"{"sub":"a","exp":1,"sub":""}"#.to_vec())),
                None,
            ),
        ),
        (
            "signed_payload_not_utf8",
            signed(Header::Hs256, Payload::Raw(Bytes(vec![0xff, 0x7b])), None),
        ),
        (
            "typed",
            Input::Typed {
                sub: Claim::Str(Str::Pick(1)),
                exp: 1,
                device: Some(Str::Pick(3)),
                topics: Some(vec![Str::Pick(2)]),
            },
        ),
        (
            "typed_long_sub",
            Input::Typed {
                sub: Claim::Len(200),
                exp: u64::MAX,
                device: None,
                topics: None,
            },
        ),
    ];
    out.push(("raw_garbage", Input::Raw(Text::from("\u{0}\u{7f}..."))));
    out.into_iter().map(|(n, i)| (n.to_owned(), i)).collect()
}
