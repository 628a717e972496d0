//! `GET /api/history/{topic}?limit=N&since=OFFSET&epoch=EPOCH`: a topic's kept messages.

use super::params::{integer, params};
use super::{bad, ApiError};
use crate::history::{HistoryError, MAX_EPOCH_BYTES};
use crate::http::response::JSON;
use crate::http::HttpResponse;
use crate::protocol::percent::{self, Plus};
use crate::protocol::{server, Since, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT};
use crate::{Now, Switchboard};

pub(super) fn history(
    sb: &mut Switchboard,
    now: Now,
    raw_topic: &str,
    target: &str,
) -> Result<HttpResponse, ApiError> {
    let topic = percent::decode(raw_topic, Plus::Literal)
        .ok()
        .ok_or_else(|| bad("topic in the path is not valid percent-encoded UTF-8"))?;
    if topic.is_empty() {
        return Err(bad("missing topic: use /api/history/{topic}"));
    }
    let [limit, since, epoch] = params(target, ["limit", "since", "epoch"])?;
    let limit = match limit {
        None => DEFAULT_HISTORY_LIMIT,
        Some(text) => integer(&text)
            .filter(|n| (1..=MAX_HISTORY_LIMIT).contains(n))
            .ok_or_else(|| bad("limit must be an integer from 1 to 1000"))?,
    };
    let since = match (since, epoch) {
        (None, None) => None,
        (Some(offset), Some(epoch)) => {
            let offset = integer(&offset).ok_or_else(|| bad("since must be an integer >= 0"))?;
            if !(1..=MAX_EPOCH_BYTES).contains(&epoch.len()) {
                return Err(bad("epoch must be 1 to 32 bytes"));
            }
            Some(Since {
                offset,
                epoch: epoch.into(),
            })
        }
        _ => return Err(bad("since and epoch go together: give both or neither")),
    };
    // `limit` is 1..=1000: it fits.
    match sb.history(now, &topic, limit as usize, since.as_ref()) {
        Ok(page) => {
            let body = server::history(
                &page.topic,
                &page.position,
                None,
                &page.messages,
                false,
                now.unix_millis,
            );
            Ok(HttpResponse::with_body(200, JSON, body.into_bytes()))
        }
        Err(e @ (HistoryError::OtherEpoch | HistoryError::Ahead)) => {
            Err(ApiError::StreamGone(e.to_string()))
        }
        Err(e) => Err(bad(e.to_string())),
    }
}
