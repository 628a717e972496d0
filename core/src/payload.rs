//! The bytes of one server message, as the core encoded them.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// One encoded server message: a complete JSON text, UTF-8 by construction.
///
/// The core's encoders make them (from a `String`), and [`Payload::parse`] checks what an
/// application brings, so an adapter may hand the bytes to a WebSocket codec as a text frame
/// without validating them again. Cloning shares the bytes
/// (a reference count): every recipient of one message shares one allocation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Payload(Bytes);

impl Payload {
    /// Takes over an encoded message; the invariant (UTF-8 JSON) holds because it is a `String`
    /// and because only the encoders call this.
    pub(crate) fn from_json(json: String) -> Self {
        Payload(Bytes::from(json.into_bytes()))
    }

    /// A frame another node encoded, as it arrived from the bus: checked to be UTF-8 (the
    /// adapters' text frames rely on it); its JSON is the peer's encoders', like ours.
    pub(crate) fn from_utf8(bytes: Bytes) -> Option<Self> {
        std::str::from_utf8(&bytes).ok()?;
        Some(Payload(bytes))
    }

    /// A payload of the application's own, e.g. to test a [`Transport`](crate::Transport):
    /// `json` must be one JSON value.
    pub fn parse(json: &str) -> Result<Payload, serde_json::Error> {
        let _: &serde_json::value::RawValue = serde_json::from_str(json)?;
        Ok(Payload::from_json(json.to_owned()))
    }

    /// The message as text.
    pub fn as_str(&self) -> &str {
        // The bytes came from a `String` and are never mutated; a failure here is impossible,
        // and would show an empty message rather than undefined behaviour.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The shared bytes (UTF-8), e.g. for a codec's text frame.
    #[inline]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty (never, for an encoded message).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Deref for Payload {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Payload {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
