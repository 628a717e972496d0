//! Token verification: HS256 JWTs (algorithm pinned) and a [`Verifier`]
//! trait for embedders who bring their own scheme.
//!
//! Verification here is pure: no clock is read. The core checks `exp`
//! against the wall-clock time it is given (see [`Claims::is_expired`]).

mod public_key;

pub use public_key::{KeyError, PublicKeyVerifier};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Map, Value};

/// Largest accepted `sub` claim, in bytes.
pub const MAX_SUB_BYTES: usize = 128;

/// The identity a verified token carries.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// User id: a string of 1 to [`MAX_SUB_BYTES`] bytes.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Optional device label, for presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Topic patterns this user may use; `None` means any topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    /// What the application keeps with the connection (a JSON object of at most
    /// [`MAX_INFO_BYTES`] serialized), returned as is by the presence and connection queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Map<String, Value>>,
}

/// Largest accepted `info` claim, serialized, in bytes.
pub const MAX_INFO_BYTES: usize = 1024;

impl Claims {
    /// Whether the token has expired at `now_unix_millis`, allowing
    /// `leeway_millis` of clock skew: expired when
    /// `now >= exp * 1000 + leeway` (a token is valid strictly before its
    /// `exp`). Saturating arithmetic.
    #[must_use]
    pub fn is_expired(&self, now_unix_millis: u64, leeway_millis: u64) -> bool {
        now_unix_millis >= self.expires_at_millis(leeway_millis)
    }

    /// The instant (Unix millis) at which the token expires, leeway
    /// included. Saturates at `u64::MAX`.
    #[must_use]
    pub fn expires_at_millis(&self, leeway_millis: u64) -> u64 {
        self.exp.saturating_mul(1000).saturating_add(leeway_millis)
    }
}

/// Checks a token and returns its claims.
///
/// Does not check expiry (the core does, against the time it is given);
/// `now_unix_millis` is there for schemes that need it (`nbf`, `iat`).
pub trait Verifier: Send + Sync + 'static {
    /// Verifies `token` and returns the identity it carries.
    ///
    /// # Errors
    ///
    /// The [`AuthError`] whose display string tells the client why the
    /// token was refused.
    fn verify(&self, token: &str, now_unix_millis: u64) -> Result<Claims, AuthError>;
}

/// Why a token was refused.
///
/// Display strings are sent to clients in `auth_error` messages, so they
/// are short lowercase English and never echo token contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not a structurally valid JWT (parts, base64, JSON).
    #[error("malformed token")]
    Malformed,
    /// The signature does not match the shared secret.
    #[error("invalid token signature")]
    BadSignature,
    /// The header names an algorithm other than HS256 (including `none`).
    #[error("token algorithm must be HS256")]
    WrongAlgorithm,
    /// A required claim is absent.
    #[error("token is missing claim `{0}`")]
    MissingClaim(&'static str),
    /// A claim is present but has the wrong type or range.
    #[error("claim `{claim}` {reason}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
        /// What is wrong, phrased to follow the claim name.
        reason: &'static str,
    },
    /// The token is past its `exp` (raised by the core, not by verifiers).
    #[error("token expired")]
    Expired,
    /// Refused by a custom verifier; the string is shown to the client as is.
    #[error("{0}")]
    Rejected(String),
}

/// HS256 with a shared secret, algorithm pinned.
pub struct Hs256Verifier {
    key: DecodingKey,
}

impl Hs256Verifier {
    /// Builds a verifier for tokens signed with `secret`.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: DecodingKey::from_secret(secret),
        }
    }
}

impl std::fmt::Debug for Hs256Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key holds the secret: never print it.
        f.debug_struct("Hs256Verifier")
            .field("algorithm", &"HS256")
            .finish_non_exhaustive()
    }
}

impl Verifier for Hs256Verifier {
    fn verify(&self, token: &str, _now_unix_millis: u64) -> Result<Claims, AuthError> {
        verify_signed(token, &self.key, Algorithm::HS256)
    }
}

/// Verifies a token signed with `algorithm` (the only one accepted) under `key`, and reads its
/// claims.
fn verify_signed(
    token: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
) -> Result<Claims, AuthError> {
    let (header, payload, signature) = split_token(token)?;
    // Checked first so `alg: none` and other algorithms get a precise
    // error: jsonwebtoken cannot even parse a `none` header.
    check_header_alg(header, algorithm)?;
    // Signature checked with jsonwebtoken's primitive rather than
    // `jsonwebtoken::decode`, whose built-in claim pre-parse turns a
    // mistyped `sub` (e.g. a number) into a generic JSON error.
    let message = &token[..header.len() + 1 + payload.len()];
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, algorithm) {
        Ok(true) => {}
        Ok(false) => return Err(AuthError::BadSignature),
        Err(e) => return Err(map_jwt_error(e.kind())),
    }
    // Only authenticated bytes are parsed from here on.
    let bytes = decode_base64url(payload).ok_or(AuthError::Malformed)?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    claims_from_value(claims)
}

/// Signs claims with HS256: used by tests, the `switchboard token`
/// subcommand and the load generator.
#[must_use]
pub fn sign_hs256(secret: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    // Serializing plain strings and integers cannot fail, and HMAC accepts
    // any key, so this is unreachable for any input.
    .expect("HS256 signing of plain claims cannot fail")
}

/// Splits a compact JWS into its header, payload and signature segments.
fn split_token(token: &str) -> Result<(&str, &str, &str), AuthError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok((header, payload, signature)),
        _ => Err(AuthError::Malformed),
    }
}

/// Refuses a header whose `alg` is anything but `HS256`.
fn check_header_alg(header: &str, algorithm: Algorithm) -> Result<(), AuthError> {
    let bytes = decode_base64url(header).ok_or(AuthError::Malformed)?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    let expected = match algorithm {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        _ => "HS256",
    };
    match header.get("alg") {
        Some(Value::String(alg)) if alg == expected => Ok(()),
        Some(Value::String(_)) => Err(AuthError::WrongAlgorithm),
        _ => Err(AuthError::Malformed),
    }
}

/// Maps a jsonwebtoken failure onto the client-facing error.
fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::WrongAlgorithm,
        _ => AuthError::Malformed,
    }
}

/// The refusal of an `info` claim that is not a small JSON object.
pub(crate) const INVALID_INFO: AuthError = AuthError::InvalidClaim {
    claim: "info",
    reason: "must be a JSON object of at most 1 KiB",
};

/// Validates the payload claim by claim, so each failure names its claim.
///
/// A claim present as `null` counts as present with the wrong type: refusing
/// it fails closed (an absent `topics` would grant every topic).
fn claims_from_value(payload: Value) -> Result<Claims, AuthError> {
    let Value::Object(mut map) = payload else {
        return Err(AuthError::Malformed);
    };

    let sub = match map.remove("sub") {
        None => return Err(AuthError::MissingClaim("sub")),
        Some(Value::String(s)) if (1..=MAX_SUB_BYTES).contains(&s.len()) => s,
        Some(_) => {
            return Err(AuthError::InvalidClaim {
                claim: "sub",
                reason: "must be a string of 1 to 128 bytes",
            })
        }
    };

    // Integers only: a float such as 1.5 (or 1.0) is refused rather than
    // rounded, so the expiry is exactly what the issuer wrote.
    let exp = match map.remove("exp") {
        None => return Err(AuthError::MissingClaim("exp")),
        Some(v) => v.as_u64().ok_or(AuthError::InvalidClaim {
            claim: "exp",
            reason: "must be a non-negative integer",
        })?,
    };

    let device = match map.remove("device") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(AuthError::InvalidClaim {
                claim: "device",
                reason: "must be a string",
            })
        }
    };

    let topics = optional_string_array(&mut map, "topics")?;

    let info = match map.remove("info") {
        None => None,
        Some(Value::Object(info)) => Some(info),
        Some(_) => return Err(INVALID_INFO),
    };

    Ok(Claims {
        sub,
        exp,
        device,
        topics,
        info,
    })
}

/// Takes an optional array-of-strings claim out of the payload.
fn optional_string_array(
    map: &mut Map<String, Value>,
    claim: &'static str,
) -> Result<Option<Vec<String>>, AuthError> {
    let invalid = AuthError::InvalidClaim {
        claim,
        reason: "must be an array of strings",
    };
    let Some(value) = map.remove(claim) else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        return Err(invalid);
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            _ => Err(invalid.clone()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Decodes unpadded base64url (RFC 4648 §5), as JWT segments use.
///
/// Hand-rolled because only the header's `alg` is needed before
/// jsonwebtoken takes over, and the crate does not re-export its base64.
fn decode_base64url(input: &str) -> Option<Vec<u8>> {
    fn sextet(b: u8) -> Option<u32> {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    }

    let bytes = input.as_bytes();
    // A lone trailing character cannot encode a whole byte.
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    for chunk in bytes.chunks(4) {
        let mut acc: u32 = 0;
        for &b in chunk {
            acc = (acc << 6) | sextet(b)?;
        }
        // Left-align a short final chunk to 24 bits; it yields len - 1 bytes.
        for _ in chunk.len()..4 {
            acc <<= 6;
        }
        // Unused low bits must be zero, so each byte string has exactly one
        // encoding (as the base64 crate inside jsonwebtoken requires).
        let used_bits = 8 * (chunk.len() - 1);
        if acc & (0x00FF_FFFF >> used_bits) != 0 {
            return None;
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"test-secret-of-reasonable-length";

    fn claims(sub: &str) -> Claims {
        Claims {
            sub: sub.to_owned(),
            exp: 2_000_000_000,
            device: None,
            topics: None,
            info: None,
        }
    }

    fn verify(token: &str) -> Result<Claims, AuthError> {
        Hs256Verifier::new(SECRET).verify(token, 0)
    }

    /// Unpadded base64url, for crafting tokens by hand.
    fn b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut buf = [0u8; 3];
            buf[..chunk.len()].copy_from_slice(chunk);
            let n = (u32::from(buf[0]) << 16) | (u32::from(buf[1]) << 8) | u32::from(buf[2]);
            for i in 0..=chunk.len() {
                let idx = (n >> (18 - 6 * i)) & 63;
                out.push(char::from(ALPHABET[idx as usize]));
            }
        }
        out
    }

    /// Signs an arbitrary JSON payload with HS256 and `SECRET`.
    fn sign_value(payload: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            payload,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn invalid(claim: &'static str, reason: &'static str) -> AuthError {
        AuthError::InvalidClaim { claim, reason }
    }

    #[test]
    fn token_round_trips_through_sign_and_verify() {
        let c = Claims {
            sub: "user-1".into(),
            exp: 1_900_000_000,
            device: Some("phone".into()),
            topics: Some(vec!["chat.*".into(), "news".into()]),
            info: None,
        };
        assert_eq!(verify(&sign_hs256(SECRET, &c)), Ok(c));
        let minimal = claims("u");
        assert_eq!(verify(&sign_hs256(SECRET, &minimal)), Ok(minimal));
    }

    #[test]
    fn wrong_secret_is_bad_signature() {
        let token = sign_hs256(b"another secret", &claims("u"));
        assert_eq!(verify(&token), Err(AuthError::BadSignature));
    }

    #[test]
    fn tampered_payload_is_bad_signature() {
        let token = sign_hs256(SECRET, &claims("alice"));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(br#"{"sub":"mallory","exp":2000000000}"#);
        parts[1] = &forged;
        assert_eq!(verify(&parts.join(".")), Err(AuthError::BadSignature));
    }

    #[test]
    fn alg_none_token_is_wrong_algorithm() {
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64(br#"{"sub":"u","exp":2000000000}"#);
        let token = format!("{header}.{payload}.");
        assert_eq!(verify(&token), Err(AuthError::WrongAlgorithm));
    }

    #[test]
    fn unknown_alg_name_is_wrong_algorithm() {
        let header = b64(br#"{"alg":"HS256X","typ":"JWT"}"#);
        let payload = b64(br#"{"sub":"u","exp":2000000000}"#);
        assert_eq!(
            verify(&format!("{header}.{payload}.sig")),
            Err(AuthError::WrongAlgorithm)
        );
    }

    #[test]
    fn hs384_and_hs512_with_same_secret_are_wrong_algorithm() {
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let token = jsonwebtoken::encode(
                &Header::new(alg),
                &claims("u"),
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap();
            assert_eq!(verify(&token), Err(AuthError::WrongAlgorithm), "{alg:?}");
        }
    }

    #[test]
    fn header_without_alg_is_malformed() {
        let header = b64(br#"{"typ":"JWT"}"#);
        let payload = b64(br#"{"sub":"u","exp":2000000000}"#);
        assert_eq!(
            verify(&format!("{header}.{payload}.sig")),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn missing_sub_is_missing_claim() {
        let token = sign_value(&serde_json::json!({"exp": 2_000_000_000u64}));
        assert_eq!(verify(&token), Err(AuthError::MissingClaim("sub")));
    }

    #[test]
    fn missing_exp_is_missing_claim() {
        let token = sign_value(&serde_json::json!({"sub": "u"}));
        assert_eq!(verify(&token), Err(AuthError::MissingClaim("exp")));
    }

    #[test]
    fn empty_sub_is_invalid_claim() {
        let token = sign_hs256(SECRET, &claims(""));
        let err = verify(&token).unwrap_err();
        assert_eq!(err, invalid("sub", "must be a string of 1 to 128 bytes"));
        assert_eq!(
            err.to_string(),
            "claim `sub` must be a string of 1 to 128 bytes"
        );
    }

    #[test]
    fn sub_of_128_bytes_is_accepted() {
        let c = claims(&"a".repeat(128));
        assert_eq!(verify(&sign_hs256(SECRET, &c)), Ok(c));
    }

    #[test]
    fn sub_of_129_bytes_is_invalid_claim() {
        let token = sign_hs256(SECRET, &claims(&"a".repeat(129)));
        assert_eq!(
            verify(&token),
            Err(invalid("sub", "must be a string of 1 to 128 bytes"))
        );
    }

    #[test]
    fn sub_length_counts_bytes_not_chars() {
        // 43 three-byte chars = 129 bytes.
        let token = sign_hs256(SECRET, &claims(&"€".repeat(43)));
        assert_eq!(
            verify(&token),
            Err(invalid("sub", "must be a string of 1 to 128 bytes"))
        );
    }

    #[test]
    fn non_string_sub_is_invalid_claim() {
        for sub in [serde_json::json!(42), Value::Null, serde_json::json!(["u"])] {
            let token = sign_value(&serde_json::json!({"sub": sub, "exp": 2_000_000_000u64}));
            assert_eq!(
                verify(&token),
                Err(invalid("sub", "must be a string of 1 to 128 bytes"))
            );
        }
    }

    #[test]
    fn exp_as_string_is_invalid_claim() {
        let token = sign_value(&serde_json::json!({"sub": "u", "exp": "2000000000"}));
        assert_eq!(
            verify(&token),
            Err(invalid("exp", "must be a non-negative integer"))
        );
    }

    #[test]
    fn exp_negative_or_fractional_is_invalid_claim() {
        for exp in [
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!(1.0),
        ] {
            let token = sign_value(&serde_json::json!({"sub": "u", "exp": exp}));
            assert_eq!(
                verify(&token),
                Err(invalid("exp", "must be a non-negative integer")),
                "{exp}"
            );
        }
    }

    #[test]
    fn exp_of_u64_max_is_accepted() {
        let token = sign_value(&serde_json::json!({"sub": "u", "exp": u64::MAX}));
        assert_eq!(verify(&token).map(|c| c.exp), Ok(u64::MAX));
    }

    #[test]
    fn device_not_string_is_invalid_claim() {
        let token = sign_value(&serde_json::json!({"sub": "u", "exp": 5, "device": 7}));
        assert_eq!(verify(&token), Err(invalid("device", "must be a string")));
    }

    #[test]
    fn topics_not_array_is_invalid_claim() {
        let token = sign_value(&serde_json::json!({"sub": "u", "exp": 5, "topics": "chat"}));
        let err = verify(&token).unwrap_err();
        assert_eq!(err, invalid("topics", "must be an array of strings"));
        assert_eq!(
            err.to_string(),
            "claim `topics` must be an array of strings"
        );
    }

    #[test]
    fn topics_with_non_string_item_is_invalid_claim() {
        let token = sign_value(&serde_json::json!({"sub": "u", "exp": 5, "topics": ["a", 1]}));
        assert_eq!(
            verify(&token),
            Err(invalid("topics", "must be an array of strings"))
        );
    }

    #[test]
    fn null_topics_is_refused_rather_than_granting_every_topic() {
        let token = sign_value(&serde_json::json!({"sub": "u", "exp": 5, "topics": null}));
        assert_eq!(
            verify(&token),
            Err(invalid("topics", "must be an array of strings"))
        );
    }

    #[test]
    fn empty_topics_array_is_kept_as_no_topics() {
        let token = sign_value(&serde_json::json!({"sub": "u", "exp": 5, "topics": []}));
        assert_eq!(verify(&token).unwrap().topics, Some(vec![]));
    }

    #[test]
    fn unknown_claims_are_ignored() {
        let token = sign_value(&serde_json::json!({
            "sub": "u", "exp": 5, "iat": "x", "nbf": 9_999_999_999u64, "aud": 3, "iss": []
        }));
        assert_eq!(verify(&token).unwrap().sub, "u");
    }

    #[test]
    fn payload_that_is_not_an_object_is_malformed() {
        for payload in [
            serde_json::json!([1, 2]),
            serde_json::json!("s"),
            Value::Null,
        ] {
            assert_eq!(verify(&sign_value(&payload)), Err(AuthError::Malformed));
        }
    }

    #[test]
    fn token_expired_by_system_clock_still_verifies() {
        // exp = 1 is decades past: verifying proves no clock is read.
        let mut c = claims("u");
        c.exp = 1;
        assert_eq!(verify(&sign_hs256(SECRET, &c)), Ok(c));
    }

    #[test]
    fn is_expired_exactly_at_exp_but_not_one_ms_before() {
        let mut c = claims("u");
        c.exp = 1_000;
        assert!(c.is_expired(1_000_000, 0));
        assert!(!c.is_expired(999_999, 0));
        assert_eq!(c.expires_at_millis(0), 1_000_000);
    }

    #[test]
    fn leeway_shifts_expiry() {
        let mut c = claims("u");
        c.exp = 1_000;
        assert!(!c.is_expired(1_000_000, 500));
        assert!(!c.is_expired(1_000_499, 500));
        assert!(c.is_expired(1_000_500, 500));
        assert_eq!(c.expires_at_millis(500), 1_000_500);
    }

    #[test]
    fn expiry_arithmetic_saturates() {
        let mut c = claims("u");
        c.exp = u64::MAX;
        assert_eq!(c.expires_at_millis(u64::MAX), u64::MAX);
        assert!(!c.is_expired(u64::MAX - 1, 1));
        assert!(c.is_expired(u64::MAX, 0));
    }

    #[test]
    fn garbage_strings_are_malformed() {
        for token in [
            "",
            ".",
            "..",
            "...",
            "abc",
            "a.b",
            "a.b.c.d",
            "not a token",
            "eyJ.eyJ.sig",
            "!!!.@@@.###",
            "e30.e30.",             // `{}` header: no alg
            "bnVsbA.e30.sig",       // `null` header
            "eyJhbGciOiJIUzI1NiJ9", // header only
        ] {
            assert_eq!(verify(token), Err(AuthError::Malformed), "{token:?}");
        }
    }

    #[test]
    fn padded_base64_header_is_malformed() {
        let header = format!("{}=", b64(br#"{"alg":"HS256"}"#));
        let token = sign_hs256(SECRET, &claims("u"));
        let rest = token.split_once('.').unwrap().1;
        assert_eq!(
            verify(&format!("{header}.{rest}")),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn display_strings_are_client_facing() {
        assert_eq!(AuthError::Malformed.to_string(), "malformed token");
        assert_eq!(
            AuthError::BadSignature.to_string(),
            "invalid token signature"
        );
        assert_eq!(
            AuthError::WrongAlgorithm.to_string(),
            "token algorithm must be HS256"
        );
        assert_eq!(
            AuthError::MissingClaim("sub").to_string(),
            "token is missing claim `sub`"
        );
        assert_eq!(AuthError::Expired.to_string(), "token expired");
        assert_eq!(AuthError::Rejected("no".into()).to_string(), "no");
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let shown = format!("{:?}", Hs256Verifier::new(b"hunter2-secret"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Hs256Verifier"));
    }

    #[test]
    fn verifier_is_object_safe_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Hs256Verifier>();
        let boxed: Box<dyn Verifier> = Box::new(Hs256Verifier::new(SECRET));
        assert!(boxed.verify(&sign_hs256(SECRET, &claims("u")), 0).is_ok());
    }

    #[test]
    fn base64url_decoder_matches_encoder() {
        for len in 0..40u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
            assert_eq!(decode_base64url(&b64(&data)), Some(data));
        }
        assert_eq!(decode_base64url("A"), None);
        assert_eq!(decode_base64url("AB+C"), None);
        // Non-zero unused bits: a second encoding of the same byte.
        assert_eq!(decode_base64url("AA"), Some(vec![0]));
        assert_eq!(decode_base64url("AB"), None);
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_strings(s in any::<String>()) {
            let _ = verify(&s);
        }

        #[test]
        fn verify_never_panics_on_dot_joined_parts(
            a in "[A-Za-z0-9_=+/.-]{0,48}",
            b in "[A-Za-z0-9_=+/-]{0,48}",
            c in ".{0,48}",
        ) {
            let _ = verify(&format!("{a}.{b}.{c}"));
        }

        #[test]
        fn verify_never_panics_on_signed_arbitrary_json(
            header in prop::sample::select(vec![
                r#"{"alg":"HS256","typ":"JWT"}"#,
                r#"{"alg":"HS256"}"#,
                r#"{"alg":"none"}"#,
                r#"{"alg":"HS512"}"#,
            ]),
            payload in prop::collection::vec(any::<u8>(), 0..64),
            sig in "[A-Za-z0-9_-]{0,48}",
        ) {
            let token = format!("{}.{}.{sig}", b64(header.as_bytes()), b64(&payload));
            let _ = verify(&token);
        }

        #[test]
        fn verified_claims_satisfy_the_invariants(
            sub in prop_oneof![".{0,140}".prop_map(Value::String), any::<i64>().prop_map(Value::from)],
            exp in prop_oneof![any::<u64>().prop_map(Value::from), any::<f64>().prop_map(Value::from), any::<i64>().prop_map(Value::from)],
            topics in proptest::option::of(prop::collection::vec(".{0,8}", 0..4)),
        ) {
            let mut payload = serde_json::json!({"sub": sub, "exp": exp});
            if let Some(t) = topics {
                payload["topics"] = serde_json::json!(t);
            }
            if let Ok(c) = verify(&sign_value(&payload)) {
                prop_assert!((1..=MAX_SUB_BYTES).contains(&c.sub.len()));
                prop_assert_eq!(Some(c.exp), payload["exp"].as_u64());
            }
        }
    }
}
