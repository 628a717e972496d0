//! Percent-decoding (RFC 3986), one implementation for the handshake's query, the API's path
//! segments and presence topics.

use std::borrow::Cow;

/// What a `+` means where the text came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plus {
    /// In a query (`application/x-www-form-urlencoded`): a space.
    Space,
    /// In a path or a topic: itself.
    Literal,
}

/// Why a text could not be decoded; the messages are shown to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding")]
    Malformed,
    /// The decoded bytes are not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
}

/// Decodes `%XX` escapes (and `+` as `plus` says); borrows when there is nothing to decode.
pub(crate) fn decode(s: &str, plus: Plus) -> Result<Cow<'_, str>, DecodeError> {
    let plus_is_space = plus == Plus::Space;
    let escaped = s.contains('%') || (plus_is_space && s.contains('+'));
    if !escaped {
        return Ok(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&b| hex_value(b));
                let lo = bytes.get(i + 2).and_then(|&b| hex_value(b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(DecodeError::Malformed),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| DecodeError::NotUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_is_a_space_in_a_query_and_itself_elsewhere() {
        assert_eq!(
            decode("a+b%2Fc%C3%A9", Plus::Space).as_deref(),
            Ok("a b/cé")
        );
        assert_eq!(
            decode("a+b%2Fc%C3%A9", Plus::Literal).as_deref(),
            Ok("a+b/cé")
        );
    }

    #[test]
    fn text_without_escapes_is_borrowed() {
        assert!(matches!(
            decode("plain", Plus::Space),
            Ok(Cow::Borrowed("plain"))
        ));
        assert!(matches!(
            decode("a+b", Plus::Literal),
            Ok(Cow::Borrowed("a+b"))
        ));
    }

    #[test]
    fn truncated_or_non_hex_escapes_and_non_utf8_are_refused() {
        for s in ["%", "%4", "%+1", "%zz"] {
            assert_eq!(
                decode(s, Plus::Literal),
                Err(DecodeError::Malformed),
                "{s:?}"
            );
        }
        assert_eq!(decode("%FF", Plus::Literal), Err(DecodeError::NotUtf8));
    }
}
