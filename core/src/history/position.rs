//! A place in a topic's stream: its epoch and an offset, and where new epochs come from.

use std::fmt;
use std::sync::Arc;

/// Longest epoch, in bytes (PROTOCOL.md: 1..=32 bytes of `[A-Za-z0-9_-]`).
pub const MAX_EPOCH_BYTES: usize = 32;

/// The name of one run of a topic's stream: a stream that was lost starts again under a new
/// epoch, so that a position from before the loss is never mistaken for one after it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Epoch(Arc<str>);

impl Epoch {
    /// The epoch as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An epoch that came from elsewhere (e.g. another node); `None` unless it is 1..=32 bytes
    /// of `[A-Za-z0-9_-]`.
    pub fn parse(s: &str) -> Option<Epoch> {
        let valid = (1..=MAX_EPOCH_BYTES).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        valid.then(|| Epoch(s.into()))
    }

    /// The epoch that 64 random bits name: 11 characters of the URL-safe base64 alphabet.
    pub fn from_random(bits: u64) -> Epoch {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let text: String = (0..11)
            .map(|i| char::from(ALPHABET[((bits >> (i * 6)) & 63) as usize]))
            .collect();
        Epoch(text.into())
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a stream stands, or where a message sits in it: the n-th message of an epoch has
/// offset n, and a stream with nothing published in its epoch yet stands at offset 0.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// Messages published in this epoch up to here.
    pub offset: u64,
    /// The stream's run.
    pub epoch: Epoch,
}

/// Draws the epochs of new streams: a keyed pseudo-random function of a counter, so that the
/// core stays deterministic (the key is an input) while epochs can be neither predicted nor
/// traced back to the key by a client who sees many of them.
#[derive(Clone)]
pub(crate) struct EpochSource {
    key: (u64, u64),
    drawn: u64,
}

impl EpochSource {
    pub(crate) fn new(seed: u64) -> Self {
        // A second key word fixed per purpose: the same seed elsewhere yields other numbers.
        EpochSource {
            key: (seed, 0x7374_7265_616d_7321),
            drawn: 0,
        }
    }

    pub(crate) fn next(&mut self) -> Epoch {
        use std::hash::Hasher;
        self.drawn += 1;
        // SipHash-2-4 is a PRF: its outputs do not reveal its key. `SipHasher` is deprecated
        // only in favour of unspecified hashers, which would not be deterministic.
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(self.key.0, self.key.1);
        h.write_u64(self.drawn);
        Epoch::from_random(h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_epochs_are_valid_distinct_and_a_function_of_the_seed() {
        let mut a = EpochSource::new(1);
        let mut b = EpochSource::new(1);
        let mut c = EpochSource::new(2);
        let (a1, a2) = (a.next(), a.next());
        assert_ne!(a1, a2);
        assert_eq!(a1, b.next());
        assert_ne!(a1, c.next());
        assert_eq!(Epoch::parse(a1.as_str()), Some(a1.clone()));
        assert_eq!(a1.as_str().len(), 11);
    }

    #[test]
    fn an_epoch_is_one_to_32_bytes_of_the_url_safe_alphabet() {
        assert!(Epoch::parse("k3x9v1").is_some());
        assert!(Epoch::parse("a_-Z9").is_some());
        assert!(Epoch::parse(&"x".repeat(32)).is_some());
        assert!(Epoch::parse(&"x".repeat(33)).is_none());
        assert!(Epoch::parse("").is_none());
        assert!(Epoch::parse("a.b").is_none());
        assert!(Epoch::parse("é").is_none());
    }
}
