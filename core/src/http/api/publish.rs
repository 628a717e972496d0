//! `POST /api/publish`: an application message to a topic's subscribers.

use serde::Serialize;

use super::fields::Fields;
use super::{bad, ApiError};
use crate::http::HttpResponse;
use crate::{Now, PublishError, Switchboard};

/// `{"delivered":n}`, with `"offset"` and `"epoch"` while history is on.
#[derive(Serialize)]
struct PublishBody<'a> {
    delivered: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a str>,
}

pub(super) fn publish(
    sb: &mut Switchboard,
    now: Now,
    f: &Fields<'_>,
) -> Result<HttpResponse, ApiError> {
    let topic = f.required_string("topic")?;
    let data = f.required_raw("data")?;
    let metadata = f.raw("metadata").filter(|m| m.get() != "null");
    match sb.publish(now, &topic, data, metadata) {
        Ok(published) => {
            let position = published.position.as_ref();
            let body = PublishBody {
                delivered: published.delivered,
                offset: position.map(|p| p.offset),
                epoch: position.map(|p| p.epoch.as_str()),
            };
            Ok(HttpResponse::json(200, &body))
        }
        Err(e @ PublishError::ReservedTopic) => Err(ApiError::Forbidden(e.to_string())),
        Err(e @ PublishError::InvalidTopic(_)) => Err(bad(format!("invalid topic: {e}"))),
        Err(e) => Err(bad(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use crate::http::api::test_support::*;
    use crate::Frame;

    #[test]
    fn publish_reaches_a_subscriber_byte_exact_as_server() {
        let mut sb = new_sb();
        let c = open(&mut sb, "alice", None);
        sb.handle_frame(
            now(),
            c,
            Frame::Text(r#"{"type":"subscribe","topic":"chat.*"}"#),
        );
        drain(&mut sb);
        let r = call(
            &mut sb,
            "POST",
            "/api/publish?ignored=1",
            r#"{"topic":"chat.room1","data":{"n":1.000000000000000000001,"s":"\u00e9"},"metadata":{"senderId":"forged","k":"v"}}"#,
        );
        assert_eq!(r.status, 200);
        let epoch = json(&r)["epoch"].as_str().unwrap().to_owned();
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            format!(r#"{{"delivered":1,"offset":1,"epoch":"{epoch}"}}"#)
        );
        let sent = sends(&drain(&mut sb));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, c);
        let payload = &sent[0].1;
        assert!(
            payload.contains(r#"{"n":1.000000000000000000001,"s":"\u00e9"}"#),
            "{payload}"
        );
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["topic"], "chat.room1");
        assert_eq!(v["metadata"]["senderId"], "server");
        assert_eq!(v["metadata"]["k"], "v");
    }

    #[test]
    fn publish_accepts_null_data_and_null_metadata() {
        let mut sb = new_sb();
        let c = open(&mut sb, "alice", None);
        sb.handle_frame(now(), c, Frame::Text(r#"{"type":"subscribe","topic":"a"}"#));
        drain(&mut sb);
        let r = call(
            &mut sb,
            "POST",
            "/api/publish",
            r#"{"topic":"a","data":null,"metadata":null}"#,
        );
        assert_eq!(json(&r)["delivered"], 1);
        let sent = sends(&drain(&mut sb));
        let v: serde_json::Value = serde_json::from_str(&sent[0].1).unwrap();
        assert!(v["data"].is_null());
        assert_eq!(v["metadata"]["senderId"], "server");
    }

    #[test]
    fn publish_without_subscribers_delivers_zero() {
        let mut sb = new_sb();
        let r = call(
            &mut sb,
            "POST",
            "/api/publish",
            r#"{"topic":"x.y","data":1}"#,
        );
        assert_eq!(json(&r)["delivered"], 0);
        assert_eq!(json(&r)["offset"], 1, "the stream counts it all the same");
    }

    #[test]
    fn publish_with_history_off_answers_the_count_alone() {
        let mut sb = new_sb_with(crate::Config {
            history_size: 0,
            ..crate::Config::default()
        });
        let r = call(&mut sb, "POST", "/api/publish", r#"{"topic":"x","data":1}"#);
        assert_eq!(json(&r), serde_json::json!({"delivered": 0}));
    }

    #[test]
    fn publish_to_a_presence_topic_is_403() {
        let mut sb = new_sb();
        let r = call(
            &mut sb,
            "POST",
            "/api/publish",
            r#"{"topic":"presence.alice","data":1}"#,
        );
        assert_eq!(
            error_of(&r),
            (403, "presence topics are reserved".to_owned())
        );
    }
}
