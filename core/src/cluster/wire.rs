//! The messages nodes exchange on the bus: a JSON header line, then (for a publish or a send)
//! the frame exactly as the origin encoded it, which receivers hand to their clients unchanged.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::payload::Payload;

/// One connection as its node announces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnRecord {
    /// Its id, as written by its node.
    pub(crate) id: String,
    pub(crate) user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: String,
    pub(crate) connected_at: u64,
    /// Session rank: when its node authenticated it (wall-clock ms), then the user's epoch.
    pub(crate) authenticated_at: u64,
    pub(crate) epoch: u64,
    /// The token's `info` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) info: Option<crate::claims::Info>,
}

/// Who a forwarded send is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Target {
    User {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
    },
    Users(Vec<String>),
    Connection(String),
    Everyone,
}

/// What a message is; every kind names its sender (`node`, `boot`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(crate) enum Header {
    /// A publish; the body is the `message` frame. `seq` numbers the sender's publishes.
    Publish { node: String, boot: u32, seq: u64 },
    /// A connection joined the sender's share of presence.
    On {
        node: String,
        boot: u32,
        conn: ConnRecord,
    },
    /// A connection left it.
    Off {
        node: String,
        boot: u32,
        conn: String,
    },
    /// Every connection the sender holds; `hello`: the sender just joined, answer with yours.
    Snapshot {
        node: String,
        boot: u32,
        hello: bool,
        conns: Vec<ConnRecord>,
    },
    /// The sender is alive.
    Heartbeat { node: String, boot: u32 },
    /// The sender heard node `of` without knowing its connections (it had taken it for dead):
    /// `of` answers with its snapshot.
    Ask { node: String, boot: u32, of: String },
    /// The sender is draining: all its connections are gone.
    Bye { node: String, boot: u32 },
    /// A push for connections anywhere; the body is the `push` frame.
    Send { node: String, boot: u32, to: Target },
    /// Close connections anywhere.
    Disconnect {
        node: String,
        boot: u32,
        to: Target,
        code: u16,
        reason: String,
    },
}

impl Header {
    /// The sender's name and run.
    pub(crate) fn sender(&self) -> (&str, u32) {
        match self {
            Header::Publish { node, boot, .. }
            | Header::On { node, boot, .. }
            | Header::Off { node, boot, .. }
            | Header::Snapshot { node, boot, .. }
            | Header::Heartbeat { node, boot }
            | Header::Ask { node, boot, .. }
            | Header::Bye { node, boot }
            | Header::Send { node, boot, .. }
            | Header::Disconnect { node, boot, .. } => (node, *boot),
        }
    }
}

/// A message: the header line alone, or the header line, `\n` and the frame.
pub(crate) fn encode(header: &Header, frame: Option<&Payload>) -> Bytes {
    let mut out = BytesMut::with_capacity(128 + frame.map_or(0, |f| f.len() + 1));
    // Serializing these plain structs to a buffer cannot fail.
    let _ = serde_json::to_writer((&mut out).writer(), header);
    if let Some(frame) = frame {
        out.put_u8(b'\n');
        out.put_slice(frame);
    }
    out.freeze()
}

/// Why a message from the bus was not understood. Every node runs the same code, so this means
/// another version or another program on the same channels: the message is dropped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("bad header: {0}")]
    Header(#[from] serde_json::Error),
    #[error("the frame is not UTF-8")]
    FrameNotUtf8,
    #[error("a frame was expected")]
    MissingFrame,
}

/// The header, and the frame if there is one (sharing the message's bytes: no copy).
pub(crate) fn decode(message: &Bytes) -> Result<(Header, Option<Payload>), DecodeError> {
    let (head, frame) = match message.iter().position(|&b| b == b'\n') {
        Some(at) => (&message[..at], Some(message.slice(at + 1..))),
        None => (&message[..], None),
    };
    let header: Header = serde_json::from_slice(head)?;
    let frame = match frame {
        Some(bytes) => Some(Payload::from_utf8(bytes).ok_or(DecodeError::FrameNotUtf8)?),
        None => None,
    };
    if frame.is_none() && matches!(header, Header::Publish { .. } | Header::Send { .. }) {
        return Err(DecodeError::MissingFrame);
    }
    Ok((header, frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_carries_the_frame_unchanged_after_its_header() {
        let frame = Payload::parse(r#"{"type":"message","data":"a\nb"}"#).unwrap();
        let header = Header::Publish {
            node: "a".into(),
            boot: 7,
            seq: 3,
        };
        let bytes = encode(&header, Some(&frame));
        let (back, body) = decode(&bytes).unwrap();
        assert_eq!(back, header);
        assert_eq!(body.unwrap().as_str(), frame.as_str());
    }

    #[test]
    fn a_header_alone_has_no_frame() {
        let header = Header::Heartbeat {
            node: "a".into(),
            boot: 1,
        };
        let (back, body) = decode(&encode(&header, None)).unwrap();
        assert_eq!((back, body), (header, None));
    }

    #[test]
    fn foreign_bytes_are_an_error_not_a_panic() {
        for bad in [&b""[..], b"{}", b"{\"kind\":\"publish\"}", b"\xff\n\xff"] {
            assert!(decode(&Bytes::copy_from_slice(bad)).is_err());
        }
        let no_frame = encode(
            &Header::Publish {
                node: "a".into(),
                boot: 1,
                seq: 1,
            },
            None,
        );
        assert!(matches!(decode(&no_frame), Err(DecodeError::MissingFrame)));
    }
}
