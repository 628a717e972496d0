//! The Redis names of the bus: channels, patterns and keys, all under one prefix.

use std::sync::Arc;

use switchboard_core::cluster::{Channel, Subscription};

/// The bytes a prefix must not contain: it is the literal start of every `PSUBSCRIBE` pattern.
const GLOB_METACHARACTERS: &[char] = &['*', '?', '[', ']', '\\'];

/// Which Redis command family a subscription uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `SUBSCRIBE` / `UNSUBSCRIBE`: one concrete channel.
    Channel,
    /// `PSUBSCRIBE` / `PUNSUBSCRIBE`: a glob over channel names.
    Pattern,
}

/// The names derived from one prefix, computed once.
#[derive(Debug)]
pub(crate) struct Layout {
    /// `{prefix}t:`, the start of every topic channel.
    topic: String,
    /// `{prefix}members`.
    members: String,
    /// `{prefix}commands`.
    commands: String,
    /// `{prefix}epoch:`, the start of every epoch counter key.
    epoch: String,
}

impl Layout {
    /// Checks the prefix and derives the names; the error says why it was refused.
    pub(crate) fn new(prefix: &str) -> Result<Self, &'static str> {
        if prefix.contains(GLOB_METACHARACTERS) {
            return Err("it must not contain a Redis glob metacharacter (* ? [ ] \\)");
        }
        Ok(Self {
            topic: format!("{prefix}t:"),
            members: format!("{prefix}members"),
            commands: format!("{prefix}commands"),
            epoch: format!("{prefix}epoch:"),
        })
    }

    /// Writes the Redis channel of `channel` into `out` (cleared first); `false` for a channel
    /// kind this bridge does not know.
    pub(crate) fn channel_name(&self, channel: &Channel, out: &mut String) -> bool {
        out.clear();
        match channel {
            Channel::Topic(topic) => {
                out.push_str(&self.topic);
                out.push_str(topic);
            }
            Channel::Members => out.push_str(&self.members),
            Channel::Commands => out.push_str(&self.commands),
            _ => return false,
        }
        true
    }

    /// The command family and the channel or pattern of a subscription; `None` for a kind
    /// this bridge does not know.
    pub(crate) fn subscription(&self, subscription: &Subscription) -> Option<(Kind, String)> {
        match subscription {
            Subscription::Topics(glob) => Some((Kind::Pattern, format!("{}{glob}", self.topic))),
            Subscription::Members => Some((Kind::Channel, self.members.clone())),
            Subscription::Commands => Some((Kind::Channel, self.commands.clone())),
            _ => None,
        }
    }

    /// Writes the key of `user`'s epoch counter into `out` (cleared first).
    pub(crate) fn epoch_key(&self, user: &str, out: &mut String) {
        out.clear();
        out.push_str(&self.epoch);
        out.push_str(user);
    }

    /// The bus channel of an incoming Redis channel name; `None` if it is not one of ours.
    pub(crate) fn parse(&self, name: &str) -> Option<Channel> {
        if let Some(topic) = name.strip_prefix(self.topic.as_str()) {
            Some(Channel::Topic(Arc::from(topic)))
        } else if name == self.members {
            Some(Channel::Members)
        } else if name == self.commands {
            Some(Channel::Commands)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_under_the_prefix() {
        let layout = Layout::new("sb:").unwrap();
        let mut out = String::new();
        assert!(layout.channel_name(&Channel::Topic("chat.lobby".into()), &mut out));
        assert_eq!(out, "sb:t:chat.lobby");
        assert_eq!(
            layout.parse(&out),
            Some(Channel::Topic("chat.lobby".into()))
        );
        assert!(layout.channel_name(&Channel::Members, &mut out));
        assert_eq!(out, "sb:members");
        assert_eq!(layout.parse(&out), Some(Channel::Members));
        assert!(layout.channel_name(&Channel::Commands, &mut out));
        assert_eq!(out, "sb:commands");
        assert_eq!(layout.parse(&out), Some(Channel::Commands));
        assert_eq!(layout.parse("other:t:x"), None);
        assert_eq!(layout.parse("sb:membersx"), None);
        layout.epoch_key("alice", &mut out);
        assert_eq!(out, "sb:epoch:alice");
    }

    #[test]
    fn subscriptions_use_the_right_command_family() {
        let layout = Layout::new("").unwrap();
        assert_eq!(
            layout.subscription(&Subscription::Topics("a.*".into())),
            Some((Kind::Pattern, "t:a.*".to_owned()))
        );
        assert_eq!(
            layout.subscription(&Subscription::Members),
            Some((Kind::Channel, "members".to_owned()))
        );
        assert_eq!(
            layout.subscription(&Subscription::Commands),
            Some((Kind::Channel, "commands".to_owned()))
        );
    }

    #[test]
    fn a_prefix_with_glob_metacharacters_is_refused() {
        for bad in ["a*", "a?", "[a]", "a\\b", "x]"] {
            assert!(Layout::new(bad).is_err(), "{bad}");
        }
        assert!(Layout::new("switchboard:").is_ok());
    }
}
