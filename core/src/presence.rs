//! Presence: who is online, how the count changes are announced, and which user a concrete
//! `presence.<user>` subscription asks about.

use crate::protocol::percent::{self, Plus};
use crate::topics::{presence_topic, Pattern, PRESENCE_PREFIX};

/// How a user's authenticated connection count moved in one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PresenceChange {
    pub(crate) before: usize,
    pub(crate) after: usize,
}

impl PresenceChange {
    /// Subscribers of the user's presence topic hear of every change of the count.
    pub(crate) fn is_push(self) -> bool {
        self.before != self.after
    }

    /// The application hears of transitions only: `Some(true)` on 0 -> n, `Some(false)` on n -> 0.
    pub(crate) fn transition(self) -> Option<bool> {
        match (self.before, self.after) {
            (0, a) if a > 0 => Some(true),
            (b, 0) if b > 0 => Some(false),
            _ => None,
        }
    }
}

/// The user whose presence topic `pattern` is exactly, if it is one: a concrete pattern
/// `presence.<encoded user>` in canonical encoding. Patterns such as `presence.*` name no one
/// user, and non-canonical spellings are no user's topic (their pushes would never match).
pub(crate) fn user_of_presence_pattern(pattern: &Pattern) -> Option<String> {
    if !pattern.is_concrete() {
        return None;
    }
    let encoded = pattern.as_str().strip_prefix(PRESENCE_PREFIX)?;
    let user = percent::decode(encoded, Plus::Literal).ok()?.into_owned();
    if user.is_empty() || user.len() > 128 {
        return None;
    }
    (presence_topic(&user).as_str() == pattern.as_str()).then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn a_concrete_presence_topic_names_its_user() {
        assert_eq!(
            user_of_presence_pattern(&pattern("presence.alice@example%2Ecom")).as_deref(),
            Some("alice@example.com")
        );
    }

    #[test]
    fn presence_wildcards_and_non_canonical_spellings_name_no_user() {
        assert_eq!(user_of_presence_pattern(&pattern("presence.*")), None);
        assert_eq!(user_of_presence_pattern(&pattern("presence.%61lice")), None);
        assert_eq!(user_of_presence_pattern(&pattern("presence.a%2")), None);
        assert_eq!(user_of_presence_pattern(&pattern("chat.alice")), None);
    }

    #[test]
    fn only_zero_crossings_are_transitions() {
        let change = |before, after| PresenceChange { before, after };
        assert_eq!(change(0, 1).transition(), Some(true));
        assert_eq!(change(1, 0).transition(), Some(false));
        assert_eq!(change(1, 2).transition(), None);
        assert!(change(1, 2).is_push());
        assert!(!change(2, 2).is_push());
    }
}
