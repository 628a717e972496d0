//! Session policy: when a user connects again, which of its connections the newcomer replaces.

use smallvec::SmallVec;

use crate::registry::ConnId;

/// How many connections a user may hold at once, and which one gives way to a newcomer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SessionPolicy {
    /// One connection per user: a new one replaces every other.
    Single,
    /// One connection per user and device (the default). A connection without a device id is a
    /// device of its own and never replaces another.
    #[default]
    PerDevice,
    /// Several connections per user (multi-device, multi-tab); over the cap the oldest go.
    Multi {
        /// Connections a user may hold; at least 1.
        max_per_user: usize,
    },
}

impl SessionPolicy {
    /// The connections that a newcomer on `device` replaces, given the user's current
    /// connections `existing` (oldest first, each with its device).
    pub(crate) fn replaced_by<'a>(
        &self,
        existing: impl ExactSizeIterator<Item = (ConnId, Option<&'a str>)>,
        device: Option<&str>,
    ) -> SmallVec<[ConnId; 2]> {
        match *self {
            SessionPolicy::Single => existing.map(|(id, _)| id).collect(),
            SessionPolicy::PerDevice => match device {
                None => SmallVec::new(),
                Some(device) => existing
                    .filter(|(_, d)| *d == Some(device))
                    .map(|(id, _)| id)
                    .collect(),
            },
            SessionPolicy::Multi { max_per_user } => {
                // Make room for the newcomer: the cap counts it too.
                let excess = (existing.len() + 1).saturating_sub(max_per_user.max(1));
                existing.take(excess).map(|(id, _)| id).collect()
            }
        }
    }

    /// Across nodes: of a user's ranked connections (`rank` says which is newer, each with its
    /// device), the indexes of those that must give way. Every node computes the same answer
    /// from the same connections, so each closes its own losers and one set of winners remains.
    pub(crate) fn losers<R: Ord>(&self, connections: &[(R, Option<&str>)]) -> Vec<usize> {
        let mut newest_first: Vec<usize> = (0..connections.len()).collect();
        newest_first.sort_by(|&a, &b| connections[b].0.cmp(&connections[a].0));
        match *self {
            SessionPolicy::Single => newest_first.into_iter().skip(1).collect(),
            SessionPolicy::PerDevice => newest_first
                .iter()
                .enumerate()
                .filter(|&(pos, &i)| {
                    let device = connections[i].1;
                    device.is_some()
                        && newest_first[..pos]
                            .iter()
                            .any(|&newer| connections[newer].1 == device)
                })
                .map(|(_, &i)| i)
                .collect(),
            SessionPolicy::Multi { max_per_user } => {
                newest_first.into_iter().skip(max_per_user.max(1)).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32) -> Vec<ConnId> {
        (0..n).map(|i| ConnId::new(i, 0)).collect()
    }

    #[test]
    fn across_nodes_the_newest_rank_wins_under_each_policy() {
        let ranked = [
            (3, Some("a")),
            (5, Some("a")),
            (4, Some("b")),
            (1, None),
            (2, None),
        ];
        let mut single = SessionPolicy::Single.losers(&ranked);
        single.sort();
        assert_eq!(single, [0, 2, 3, 4]);
        assert_eq!(SessionPolicy::PerDevice.losers(&ranked), [0]);
        let mut multi = SessionPolicy::Multi { max_per_user: 2 }.losers(&ranked);
        multi.sort();
        assert_eq!(multi, [0, 3, 4]);
    }

    #[test]
    fn single_replaces_every_existing_connection() {
        let ids = ids(2);
        let existing = [(ids[0], Some("a")), (ids[1], None)];
        let out = SessionPolicy::Single.replaced_by(existing.into_iter(), Some("b"));
        assert_eq!(out.as_slice(), &ids[..]);
    }

    #[test]
    fn per_device_replaces_only_the_same_device() {
        let ids = ids(3);
        let existing = [(ids[0], Some("a")), (ids[1], Some("b")), (ids[2], None)];
        let out = SessionPolicy::PerDevice.replaced_by(existing.into_iter(), Some("b"));
        assert_eq!(out.as_slice(), &[ids[1]]);
    }

    #[test]
    fn per_device_without_device_replaces_nothing() {
        let ids = ids(1);
        let existing = [(ids[0], None)];
        let out = SessionPolicy::PerDevice.replaced_by(existing.into_iter(), None);
        assert!(out.is_empty());
    }

    #[test]
    fn multi_replaces_the_oldest_only_when_at_the_cap() {
        let ids = ids(3);
        let policy = SessionPolicy::Multi { max_per_user: 3 };
        let two = [(ids[0], None), (ids[1], None)];
        assert!(policy.replaced_by(two.into_iter(), None).is_empty());
        let three = [(ids[0], None), (ids[1], None), (ids[2], None)];
        assert_eq!(
            policy.replaced_by(three.into_iter(), None).as_slice(),
            &[ids[0]]
        );
    }
}
