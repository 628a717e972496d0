//! Query-string parameters of the `GET` endpoints: the ones an endpoint reads, decoded.

use super::{bad, ApiError};
use crate::protocol::percent::{self, Plus};

/// The values of the parameters `names` in `target`'s query string, in the order of `names`;
/// other parameters are ignored, a repeated one is a 400, and so is one that is not valid
/// percent-encoded UTF-8.
pub(super) fn params<const N: usize>(
    target: &str,
    names: [&str; N],
) -> Result<[Option<String>; N], ApiError> {
    let mut values = [const { None }; N];
    let Some((_, query)) = target.split_once('?') else {
        return Ok(values);
    };
    let decode = |s| {
        percent::decode(s, Plus::Space)
            .map(|v| v.into_owned())
            .map_err(|_| bad("query parameters must be valid percent-encoded UTF-8"))
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key)?;
        let Some(slot) = names.iter().position(|n| *n == key) else {
            continue;
        };
        if values[slot].is_some() {
            return Err(bad(format!("parameter `{key}` is given twice")));
        }
        values[slot] = Some(decode(value)?);
    }
    Ok(values)
}

/// Decimal digits only, saturating beyond `u64` (an offset that large is ahead of any stream).
pub(super) fn integer(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}
