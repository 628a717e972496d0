//! The JSON object body of an API request, each field read with an error naming it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{bad, ApiError};
use crate::protocol::validate_device_id;

/// A JSON object body, each field kept as raw JSON so that `data` reaches clients exactly as
/// received and each field's type error can name the field.
pub(super) struct Fields<'a>(BTreeMap<String, &'a RawValue>);

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
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, ApiError> {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Err(bad("missing JSON body")),
            Some(b'{') => {}
            Some(_) => return Err(bad("request body must be a JSON object")),
        }
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))
    }

    /// A field given with any value, `null` included.
    pub(super) fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.0.get(name).copied()
    }

    pub(super) fn required_raw(&self, name: &str) -> Result<&'a RawValue, ApiError> {
        self.raw(name)
            .ok_or_else(|| bad(format!("missing field `{name}`")))
    }

    pub(super) fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
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

    pub(super) fn required_string(&self, name: &str) -> Result<String, ApiError> {
        self.string(name)?
            .ok_or_else(|| bad(format!("missing field `{name}`")))
    }

    /// A required, non-empty user id.
    pub(super) fn user_id(&self) -> Result<String, ApiError> {
        let user = self.required_string("userId")?;
        if user.is_empty() {
            return Err(bad("field `userId` must not be empty"));
        }
        Ok(user)
    }

    /// An optional device id, checked like the handshake's `device`.
    pub(super) fn device_id(&self) -> Result<Option<String>, ApiError> {
        let device = self.string("deviceId")?;
        if let Some(d) = &device {
            validate_device_id(d).map_err(|e| bad(format!("field `deviceId`: {e}")))?;
        }
        Ok(device)
    }
}
