//! The history fields of client messages: a `since` position and a `limit`.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::client::{as_str, Members, ParseErrorKind};
use crate::history::MAX_EPOCH_BYTES;

/// Most messages one `history` request lists, and its default.
pub const MAX_HISTORY_LIMIT: u64 = 1000;
/// Messages a `history` request lists when it gives no `limit`.
pub const DEFAULT_HISTORY_LIMIT: u64 = 100;

/// A position a client asks to continue from: `{"offset": n, "epoch": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Since<'a> {
    /// The last offset the client saw. An integer beyond `u64` is read as `u64::MAX`: ahead
    /// of every stream, which is what it is.
    pub offset: u64,
    /// The epoch it saw it in (1..=32 bytes, not checked further: a foreign epoch simply
    /// names no stream's).
    pub epoch: Cow<'a, str>,
}

/// Reads `since`: absent or `null` is none; otherwise an object of exactly `offset` (a JSON
/// integer >= 0) and `epoch` (a string of 1..=32 bytes).
pub(crate) fn parse_since(raw: Option<&RawValue>) -> Result<Option<Since<'_>>, ParseErrorKind> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let Members(members) =
        serde_json::from_str(raw.get()).map_err(|_| ParseErrorKind::InvalidSince)?;
    let (mut offset, mut epoch) = (None, None);
    for (key, value) in members {
        match &*key {
            "offset" => offset = Some(value),
            "epoch" => epoch = Some(value),
            _ => return Err(ParseErrorKind::InvalidSince),
        }
    }
    let offset = offset.ok_or(ParseErrorKind::InvalidSince)?;
    let offset = integer(offset).ok_or(ParseErrorKind::InvalidSince)?;
    let epoch = epoch
        .and_then(as_str)
        .filter(|e| (1..=MAX_EPOCH_BYTES).contains(&e.len()))
        .ok_or(ParseErrorKind::InvalidSince)?;
    Ok(Some(Since { offset, epoch }))
}

/// Reads `limit`: absent is the default; otherwise a JSON integer in 1..=1000.
pub(crate) fn parse_limit(raw: Option<&RawValue>) -> Result<u64, ParseErrorKind> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_HISTORY_LIMIT);
    };
    integer(raw)
        .filter(|n| (1..=MAX_HISTORY_LIMIT).contains(n))
        .ok_or(ParseErrorKind::InvalidLimit)
}

/// A JSON integer >= 0 (`1.0`, `1e3` and `-0` are not), saturating at `u64::MAX`.
fn integer(raw: &RawValue) -> Option<u64> {
    let text = raw.get();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn since(json: &str) -> Result<Option<Since<'_>>, ParseErrorKind> {
        let raw: &RawValue = serde_json::from_str(json).unwrap();
        parse_since(Some(raw))
    }

    fn limit(json: &str) -> Result<u64, ParseErrorKind> {
        let raw: &RawValue = serde_json::from_str(json).unwrap();
        parse_limit(Some(raw))
    }

    #[test]
    fn a_well_formed_since_is_read_and_null_is_none() {
        assert_eq!(
            since(r#"{"offset":40,"epoch":"k3x9v1"}"#),
            Ok(Some(Since {
                offset: 40,
                epoch: "k3x9v1".into()
            }))
        );
        assert_eq!(
            since(r#"{"epoch":"e","offset":0}"#)
                .unwrap()
                .unwrap()
                .offset,
            0
        );
        assert_eq!(since("null"), Ok(None));
        assert_eq!(parse_since(None), Ok(None));
    }

    #[test]
    fn every_malformed_since_is_refused() {
        for bad in [
            "1",
            r#""x""#,
            "[]",
            "{}",
            r#"{"offset":1}"#,
            r#"{"epoch":"e"}"#,
            r#"{"offset":1.0,"epoch":"e"}"#,
            r#"{"offset":1e3,"epoch":"e"}"#,
            r#"{"offset":-1,"epoch":"e"}"#,
            r#"{"offset":-0,"epoch":"e"}"#,
            r#"{"offset":"1","epoch":"e"}"#,
            r#"{"offset":null,"epoch":"e"}"#,
            r#"{"offset":1,"epoch":""}"#,
            r#"{"offset":1,"epoch":1}"#,
            r#"{"offset":1,"epoch":null}"#,
            r#"{"offset":1,"epoch":"e","extra":true}"#,
        ] {
            assert_eq!(since(bad), Err(ParseErrorKind::InvalidSince), "{bad}");
        }
        let long = format!(r#"{{"offset":1,"epoch":"{}"}}"#, "e".repeat(33));
        assert_eq!(since(&long), Err(ParseErrorKind::InvalidSince));
        let edge = format!(r#"{{"offset":1,"epoch":"{}"}}"#, "e".repeat(32));
        assert!(since(&edge).is_ok());
    }

    #[test]
    fn an_offset_beyond_u64_reads_as_ahead_of_every_stream() {
        let s = since(r#"{"offset":123456789012345678901234567890,"epoch":"e"}"#);
        assert_eq!(s.unwrap().unwrap().offset, u64::MAX);
    }

    #[test]
    fn limit_is_1_to_1000_and_defaults_to_100() {
        assert_eq!(parse_limit(None), Ok(100));
        assert_eq!(limit("1"), Ok(1));
        assert_eq!(limit("1000"), Ok(1000));
        for bad in ["0", "1001", "1.5", "-1", r#""5""#, "null"] {
            assert_eq!(limit(bad), Err(ParseErrorKind::InvalidLimit), "{bad}");
        }
    }
}
