//! Token verification: the claims every verifier must satisfy, checked against the wall
//! clock given.

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;

use crate::auth::{AuthError, INVALID_INFO, MAX_INFO_BYTES};
use crate::protocol::validate_device_id;
use crate::switchboard::{Switchboard, MAX_USER_ID_BYTES};
use crate::time::{Instant, Now};
use crate::topics::Pattern;

/// A token's `info` claim: a JSON object, serialized once, returned as is.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Info(Box<RawValue>);

impl Info {
    pub(crate) fn raw(&self) -> &RawValue {
        &self.0
    }
}

impl PartialEq for Info {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for Info {}

/// A verified identity, ready to be bound to a connection.
pub(crate) struct Identity {
    pub(crate) user: String,
    pub(crate) device: Option<String>,
    pub(crate) allowed_topics: Option<Arc<[Pattern]>>,
    pub(crate) expires_at: Instant,
    /// The token's `info`, serialized once.
    pub(crate) info: Option<Info>,
}

impl Switchboard {
    /// Verifies a token and the claims every verifier must satisfy, against the wall clock given.
    pub(crate) fn verify(&self, now: Now, token: &str) -> Result<Identity, AuthError> {
        let claims = self.verifier.verify(token, now.unix_millis)?;
        if claims.sub.is_empty() || claims.sub.len() > MAX_USER_ID_BYTES {
            return Err(AuthError::InvalidClaim {
                claim: "sub",
                reason: "must be a string of 1 to 128 bytes",
            });
        }
        let leeway = u64::try_from(self.config.jwt_leeway.as_millis()).unwrap_or(u64::MAX);
        if claims.is_expired(now.unix_millis, leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(device) = &claims.device {
            if validate_device_id(device).is_err() {
                return Err(AuthError::InvalidClaim {
                    claim: "device",
                    reason: "must be 1 to 64 characters of [A-Za-z0-9._:-]",
                });
            }
        }
        let allowed_topics = match &claims.topics {
            None => None,
            Some(topics) => Some(
                topics
                    .iter()
                    .map(|t| Pattern::parse(t))
                    .collect::<Result<Arc<[Pattern]>, _>>()
                    .map_err(|_| AuthError::InvalidClaim {
                        claim: "topics",
                        reason: "must be an array of valid topic patterns",
                    })?,
            ),
        };
        // Checked here, not in the verifier, so that every verifier's tokens obey it.
        let info = match &claims.info {
            None => None,
            Some(info) => {
                let json = serde_json::to_string(info).map_err(|_| INVALID_INFO)?;
                if json.len() > MAX_INFO_BYTES {
                    return Err(INVALID_INFO);
                }
                Some(Info(RawValue::from_string(json).map_err(|_| INVALID_INFO)?))
            }
        };
        let remaining = claims
            .expires_at_millis(leeway)
            .saturating_sub(now.unix_millis);
        Ok(Identity {
            expires_at: now.instant + Duration::from_millis(remaining),
            user: claims.sub,
            device: claims.device,
            allowed_topics,
            info,
        })
    }
}
