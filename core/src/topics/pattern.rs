//! Validated topics and subscription patterns.
//!
//! Both are stored as the original string; validation guarantees the
//! segment structure, so later code only ever splits on `.`.

use std::fmt;
use std::str::FromStr;

/// Prefix of every presence topic (`presence.<encoded user id>`).
///
/// The `presence` namespace is reserved: the server publishes there, clients
/// may only subscribe.
pub const PRESENCE_PREFIX: &str = "presence.";

/// First segment of presence topics (the prefix without its dot).
const PRESENCE_SEGMENT: &str = "presence";

/// Maximum number of segments in a topic or pattern.
pub(crate) const MAX_SEGMENTS: usize = 16;

/// Maximum length of an ordinary segment.
const MAX_SEGMENT_LEN: usize = 128;

/// Maximum length of the user segment of a presence topic: a user id of up to
/// 128 bytes, each byte possibly percent-encoded to three characters.
const MAX_PRESENCE_SEGMENT_LEN: usize = 3 * 128;

/// Single-segment wildcard.
const STAR: &str = "*";

/// Trailing multi-segment wildcard.
const DOUBLE_STAR: &str = "**";

/// Bytes allowed in a literal segment: `[A-Za-z0-9_:@+=~%-]`.
static SEGMENT_BYTES: [bool; 256] = byte_table(b"_:@+=~%-");

/// Bytes a user id may keep unencoded in a presence topic: `[A-Za-z0-9_:@+=~-]`.
static PRESENCE_UNRESERVED: [bool; 256] = byte_table(b"_:@+=~-");

/// Builds a lookup table of ASCII alphanumerics plus `extra`.
const fn byte_table(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// Why a topic or pattern string was refused.
///
/// The `Display` messages are sent to clients, so each one names the problem
/// and, where it helps, the 1-based segment index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The string is empty.
    #[error("topic is empty")]
    Empty,
    /// More than 16 dot-separated segments.
    #[error("topic has {count} segments, at most 16 are allowed")]
    TooManySegments {
        /// Number of segments found.
        count: usize,
    },
    /// A segment is empty (leading, trailing or doubled dot).
    #[error("topic segment {index} is empty")]
    EmptySegment {
        /// 1-based segment index.
        index: usize,
    },
    /// A segment exceeds 128 characters (384 for the user segment of a
    /// presence topic).
    #[error(
        "topic segment {index} is {len} characters long, at most 128 are allowed \
         (384 for the user segment of a presence topic)"
    )]
    SegmentTooLong {
        /// 1-based segment index.
        index: usize,
        /// Length of the segment in characters.
        len: usize,
    },
    /// A segment contains a character outside `[A-Za-z0-9_:@+=~%-]`.
    #[error("invalid character {ch:?} in topic segment {index}")]
    InvalidChar {
        /// 1-based segment index.
        index: usize,
        /// The first offending character.
        ch: char,
    },
    /// A pattern segment mixes `*` with other characters (`a*`, `***`).
    #[error("`*` must be a whole segment, found inside topic segment {index}")]
    PartialWildcard {
        /// 1-based segment index.
        index: usize,
    },
    /// `**` appears in a pattern somewhere other than the last segment.
    #[error("`**` is only allowed as the last segment")]
    MisplacedDoubleStar,
    /// A wildcard segment appears where a concrete topic is required.
    #[error("wildcards are not allowed in a published topic")]
    Wildcard,
}

/// Validates `s` as a topic (`allow_wildcards == false`) or a pattern.
fn validate(s: &str, allow_wildcards: bool) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    let count = s.bytes().filter(|&b| b == b'.').count() + 1;
    if count > MAX_SEGMENTS {
        return Err(TopicError::TooManySegments { count });
    }
    // Exactly two segments with the first being `presence`: the second one
    // is an encoded user id and gets the longer limit.
    let presence = count == 2 && s.starts_with(PRESENCE_PREFIX);
    for (i, seg) in s.split('.').enumerate() {
        let index = i + 1;
        match seg {
            "" => return Err(TopicError::EmptySegment { index }),
            STAR if allow_wildcards => {}
            DOUBLE_STAR if allow_wildcards => {
                if index != count {
                    return Err(TopicError::MisplacedDoubleStar);
                }
            }
            STAR | DOUBLE_STAR => return Err(TopicError::Wildcard),
            _ => {
                validate_literal(seg, index, allow_wildcards)?;
                let max = if presence && index == 2 {
                    MAX_PRESENCE_SEGMENT_LEN
                } else {
                    MAX_SEGMENT_LEN
                };
                // Characters were validated as ASCII, so bytes == chars.
                if seg.len() > max {
                    return Err(TopicError::SegmentTooLong {
                        index,
                        len: seg.len(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Checks the characters of a non-wildcard segment.
fn validate_literal(seg: &str, index: usize, allow_wildcards: bool) -> Result<(), TopicError> {
    let Some(pos) = seg.bytes().position(|b| !SEGMENT_BYTES[usize::from(b)]) else {
        return Ok(());
    };
    // All bytes before `pos` are ASCII, so `pos` is a char boundary.
    let ch = seg
        .get(pos..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER);
    if ch == '*' && allow_wildcards {
        return Err(TopicError::PartialWildcard { index });
    }
    Err(TopicError::InvalidChar { index, ch })
}

/// A validated concrete topic (no wildcards).
///
/// 1..=16 dot-separated segments of 1..=128 characters from
/// `[A-Za-z0-9_:@+=~%-]` (384 for the user segment of `presence.<user>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Box<str>);

impl Topic {
    /// Parses and validates a concrete topic.
    ///
    /// Wildcard segments (`*`, `**`) are refused with [`TopicError::Wildcard`].
    pub fn parse(s: &str) -> Result<Topic, TopicError> {
        validate(s, false)?;
        Ok(Topic(s.into()))
    }

    /// The topic string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The dot-separated segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split('.')
    }

    /// Whether the topic lies in the reserved `presence` namespace.
    ///
    /// Clients may subscribe there but not publish.
    pub fn is_presence(&self) -> bool {
        self.segments().next() == Some(PRESENCE_SEGMENT)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Topic {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::parse(s)
    }
}

/// A validated subscription pattern (may contain `*` segments and a trailing `**`).
///
/// `*` matches exactly one segment; a trailing `**` matches one or more.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern(Box<str>);

impl Pattern {
    /// Parses and validates a subscription pattern.
    pub fn parse(s: &str) -> Result<Pattern, TopicError> {
        validate(s, true)?;
        Ok(Pattern(s.into()))
    }

    /// The pattern string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The dot-separated segments, in order (wildcards as `*` / `**`).
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split('.')
    }

    /// Whether the pattern contains no wildcard segment.
    pub fn is_concrete(&self) -> bool {
        // Validation guarantees `*` only ever appears as a wildcard segment.
        !self.0.contains('*')
    }

    /// The pattern as a topic, when it has no wildcard.
    pub fn as_topic(&self) -> Option<Topic> {
        self.is_concrete().then(|| Topic(self.0.clone()))
    }

    /// Whether the pattern matches `topic`.
    ///
    /// This is the straightforward reference matcher; bulk matching goes
    /// through the topic trie.
    pub fn matches(&self, topic: &Topic) -> bool {
        let mut t = topic.segments();
        for p in self.segments() {
            match p {
                DOUBLE_STAR => return t.next().is_some(),
                STAR => {
                    if t.next().is_none() {
                        return false;
                    }
                }
                lit => {
                    if t.next() != Some(lit) {
                        return false;
                    }
                }
            }
        }
        t.next().is_none()
    }

    /// Whether this (claim) pattern covers `other`, i.e. permits subscribing to it.
    ///
    /// Segment by segment: a literal covers the same literal, `*` covers a
    /// literal or `*`, and a trailing `**` covers any tail of one or more
    /// segments. A literal never covers `*`, `*` never covers `**`, and
    /// segment counts must otherwise line up. Coverage implies every topic
    /// matched by `other` is also matched by `self`.
    pub fn covers(&self, other: &Pattern) -> bool {
        let mut o = other.segments();
        for c in self.segments() {
            match c {
                DOUBLE_STAR => return o.next().is_some(),
                STAR => match o.next() {
                    None | Some(DOUBLE_STAR) => return false,
                    Some(_) => {}
                },
                lit => {
                    if o.next() != Some(lit) {
                        return false;
                    }
                }
            }
        }
        o.next().is_none()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Pattern {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Pattern {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

impl From<Topic> for Pattern {
    /// Every topic is a valid (concrete) pattern.
    fn from(topic: Topic) -> Self {
        Pattern(topic.0)
    }
}

/// The presence topic of a user: `presence.<u>`.
///
/// `<u>` is `user_id` with every byte outside `[A-Za-z0-9_:@+=~-]`
/// percent-encoded as `%XX` (uppercase hex), so `alice@example.com` becomes
/// `presence.alice@example%2Ecom`. Valid for user ids of 1..=128 bytes; other
/// lengths still yield a `Topic` (built without validation, used only for
/// matching) rather than panicking.
pub fn presence_topic(user_id: &str) -> Topic {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(PRESENCE_PREFIX.len() + 3 * user_id.len());
    s.push_str(PRESENCE_PREFIX);
    for b in user_id.bytes() {
        if PRESENCE_UNRESERVED[usize::from(b)] {
            s.push(char::from(b));
        } else {
            s.push('%');
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    Topic(s.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Topic {
        Topic::parse(s).expect("valid topic")
    }

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).expect("valid pattern")
    }

    fn segs(n: usize) -> String {
        vec!["a"; n].join(".")
    }

    #[test]
    fn empty_string_is_refused() {
        assert_eq!(Topic::parse(""), Err(TopicError::Empty));
        assert_eq!(Pattern::parse(""), Err(TopicError::Empty));
    }

    #[test]
    fn sixteen_segments_ok_seventeen_refused() {
        assert!(Topic::parse(&segs(16)).is_ok());
        assert!(Pattern::parse(&segs(16)).is_ok());
        let err = Topic::parse(&segs(17)).unwrap_err();
        assert_eq!(err, TopicError::TooManySegments { count: 17 });
        assert_eq!(
            err.to_string(),
            "topic has 17 segments, at most 16 are allowed"
        );
        assert_eq!(
            Pattern::parse(&format!("{}.**", segs(16))),
            Err(TopicError::TooManySegments { count: 17 })
        );
    }

    #[test]
    fn empty_segments_are_refused_with_their_index() {
        assert_eq!(
            Topic::parse("a..b"),
            Err(TopicError::EmptySegment { index: 2 })
        );
        assert_eq!(
            Topic::parse(".a"),
            Err(TopicError::EmptySegment { index: 1 })
        );
        assert_eq!(
            Pattern::parse("a."),
            Err(TopicError::EmptySegment { index: 2 })
        );
        assert_eq!(
            Topic::parse("a..b").unwrap_err().to_string(),
            "topic segment 2 is empty"
        );
    }

    #[test]
    fn segment_of_128_ok_129_refused() {
        let ok = format!("x.{}", "a".repeat(128));
        assert!(Topic::parse(&ok).is_ok());
        let bad = format!("x.{}", "a".repeat(129));
        assert_eq!(
            Topic::parse(&bad),
            Err(TopicError::SegmentTooLong { index: 2, len: 129 })
        );
        assert_eq!(
            Pattern::parse(&bad),
            Err(TopicError::SegmentTooLong { index: 2, len: 129 })
        );
    }

    #[test]
    fn presence_user_segment_of_384_ok_385_refused() {
        let ok = format!("presence.{}", "%2E".repeat(128));
        assert_eq!(ok.len() - PRESENCE_PREFIX.len(), 384);
        assert!(Topic::parse(&ok).is_ok());
        assert!(Pattern::parse(&ok).is_ok());
        let bad = format!("presence.{}", "a".repeat(385));
        assert_eq!(
            Topic::parse(&bad),
            Err(TopicError::SegmentTooLong { index: 2, len: 385 })
        );
    }

    #[test]
    fn presence_exemption_is_only_for_two_segment_presence_topics() {
        let long = "a".repeat(129);
        for s in [
            format!("presence.{long}.x"),
            format!("presence.x.{long}"),
            format!("presencex.{long}"),
            format!("x.{long}"),
        ] {
            assert!(
                matches!(
                    Topic::parse(&s),
                    Err(TopicError::SegmentTooLong { len: 129, .. })
                ),
                "{s}"
            );
        }
        // The first segment itself never gets the long limit.
        assert!(Topic::parse(&format!("{long}.presence")).is_err());
    }

    #[test]
    fn invalid_characters_are_named() {
        let err = Topic::parse("a#.b").unwrap_err();
        assert_eq!(err, TopicError::InvalidChar { index: 1, ch: '#' });
        assert_eq!(err.to_string(), "invalid character '#' in topic segment 1");
        assert_eq!(
            Topic::parse("a.bé"),
            Err(TopicError::InvalidChar { index: 2, ch: 'é' })
        );
        assert_eq!(
            Topic::parse("a b"),
            Err(TopicError::InvalidChar { index: 1, ch: ' ' })
        );
        assert_eq!(
            Topic::parse("a*"),
            Err(TopicError::InvalidChar { index: 1, ch: '*' })
        );
    }

    #[test]
    fn all_allowed_characters_are_accepted() {
        assert!(Topic::parse("AZaz09_:@+=~%-.x").is_ok());
    }

    #[test]
    fn star_inside_a_segment_is_refused() {
        assert_eq!(
            Pattern::parse("chat.a*"),
            Err(TopicError::PartialWildcard { index: 2 })
        );
        assert_eq!(
            Pattern::parse("***"),
            Err(TopicError::PartialWildcard { index: 1 })
        );
    }

    #[test]
    fn double_star_only_allowed_last() {
        let err = Pattern::parse("a.**.b").unwrap_err();
        assert_eq!(err, TopicError::MisplacedDoubleStar);
        assert_eq!(err.to_string(), "`**` is only allowed as the last segment");
        assert_eq!(Pattern::parse("**.a"), Err(TopicError::MisplacedDoubleStar));
        assert!(Pattern::parse("a.*.**").is_ok());
        assert!(Pattern::parse("*").is_ok());
        assert!(Pattern::parse("**").is_ok());
    }

    #[test]
    fn topics_refuse_wildcards() {
        for s in ["*", "**", "a.*", "a.**", "*.a"] {
            let err = Topic::parse(s).unwrap_err();
            assert_eq!(err, TopicError::Wildcard, "{s}");
            assert_eq!(
                err.to_string(),
                "wildcards are not allowed in a published topic"
            );
        }
    }

    #[test]
    fn star_matches_exactly_one_segment() {
        let pat = p("chat.*");
        assert!(pat.matches(&t("chat.a")));
        assert!(!pat.matches(&t("chat.a.b")));
        assert!(!pat.matches(&t("chat")));
        assert!(!pat.matches(&t("other.a")));
        assert!(p("*").matches(&t("a")));
        assert!(!p("*").matches(&t("a.b")));
    }

    #[test]
    fn double_star_matches_one_or_more_segments_but_not_the_prefix() {
        let pat = p("chat.**");
        assert!(pat.matches(&t("chat.a")));
        assert!(pat.matches(&t("chat.a.b")));
        assert!(!pat.matches(&t("chat")));
        assert!(!pat.matches(&t("chatx.a")));
        assert!(p("**").matches(&t("a")));
        assert!(p("**").matches(&t("a.b.c")));
    }

    #[test]
    fn literal_pattern_matches_only_itself() {
        assert!(p("a.b").matches(&t("a.b")));
        assert!(!p("a.b").matches(&t("a")));
        assert!(!p("a.b").matches(&t("a.b.c")));
        assert!(!p("a").matches(&t("ab")));
    }

    #[test]
    fn concrete_patterns_convert_to_topics() {
        assert!(p("a.b").is_concrete());
        assert_eq!(p("a.b").as_topic(), Some(t("a.b")));
        assert!(!p("a.*").is_concrete());
        assert_eq!(p("a.**").as_topic(), None);
        assert_eq!(Pattern::from(t("a.b")), p("a.b"));
    }

    #[test]
    fn accessors_and_display_return_the_string() {
        let pat = p("a.*.**");
        assert_eq!(pat.as_str(), "a.*.**");
        assert_eq!(pat.to_string(), "a.*.**");
        assert_eq!(pat.segments().collect::<Vec<_>>(), ["a", "*", "**"]);
        let top = t("x.y");
        assert_eq!(top.to_string(), "x.y");
        assert_eq!(top.segments().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!("x.y".parse::<Topic>(), Ok(top));
    }

    #[test]
    fn is_presence_checks_the_first_segment() {
        assert!(t("presence.alice").is_presence());
        assert!(t("presence.a.b").is_presence());
        assert!(!t("presences.alice").is_presence());
        assert!(!t("x.presence").is_presence());
        assert!(t("presence").is_presence());
    }

    #[test]
    fn literal_covers_same_literal_only() {
        assert!(p("a.b").covers(&p("a.b")));
        assert!(!p("a.b").covers(&p("a.c")));
        assert!(!p("a.b").covers(&p("a.*")));
        assert!(!p("a.b").covers(&p("a.**")));
    }

    #[test]
    fn star_covers_literal_or_star_but_not_double_star() {
        assert!(p("a.*").covers(&p("a.b")));
        assert!(p("a.*").covers(&p("a.*")));
        assert!(!p("a.*").covers(&p("a.**")));
        assert!(!p("*").covers(&p("**")));
    }

    #[test]
    fn double_star_covers_any_nonempty_tail() {
        let claim = p("a.**");
        assert!(claim.covers(&p("a.b")));
        assert!(claim.covers(&p("a.b.c")));
        assert!(claim.covers(&p("a.*")));
        assert!(claim.covers(&p("a.*.**")));
        assert!(claim.covers(&p("a.**")));
        assert!(!claim.covers(&p("a")));
        assert!(!claim.covers(&p("b.c")));
        assert!(p("**").covers(&p("**")));
        assert!(p("**").covers(&p("x.*")));
    }

    #[test]
    fn covers_requires_matching_segment_counts() {
        assert!(!p("a.*").covers(&p("a")));
        assert!(!p("a.*").covers(&p("a.b.c")));
        assert!(!p("a").covers(&p("a.b")));
        assert!(!p("*.*").covers(&p("a")));
    }

    #[test]
    fn presence_topic_encodes_reserved_bytes() {
        let topic = presence_topic("alice@example.com");
        assert_eq!(topic.as_str(), "presence.alice@example%2Ecom");
        assert!(topic.is_presence());
        assert_eq!(Topic::parse(topic.as_str()), Ok(topic));
        assert_eq!(presence_topic("a%b").as_str(), "presence.a%25b");
        assert_eq!(presence_topic("A-z_0:9+=~").as_str(), "presence.A-z_0:9+=~");
    }

    #[test]
    fn presence_topic_encodes_each_utf8_byte() {
        // 'é' is C3 A9, '€' is E2 82 AC.
        assert_eq!(presence_topic("é€").as_str(), "presence.%C3%A9%E2%82%AC");
    }

    #[test]
    fn presence_topic_of_max_user_id_is_a_valid_topic() {
        let user = "\u{7f}".repeat(128);
        let topic = presence_topic(&user);
        assert_eq!(Topic::parse(topic.as_str()), Ok(topic));
    }

    #[test]
    fn presence_topic_does_not_panic_on_odd_lengths() {
        assert_eq!(presence_topic("").as_str(), "presence.");
        assert_eq!(presence_topic(&"é".repeat(200)).segments().count(), 2);
    }
}
