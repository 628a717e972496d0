//! The session policy across nodes: every announced connection of a user has a rank, the
//! policy picks the winners by rank, and each node closes its own losers with 4001.
//!
//! The rank is (when its node authenticated it, in wall-clock ms; the user's epoch it took from
//! the bus's shared counter; its node; its id). Every node sees the same announcements and
//! computes the same winners, so two logins racing on two nodes leave one winner everywhere.
//! Authentication time comes first so that after an outage, when the connections made on
//! either side take their epochs in whatever order the nodes reconnect, the newest still wins;
//! the epoch orders logins within the same millisecond.

use std::sync::Arc;

use crate::registry::ConnId;
use crate::switchboard::{Leave, Switchboard};
use crate::time::Now;

/// A connection's place in the order of its user's sessions; the greatest is the newest.
type Rank = (u64, u64, Arc<str>, String);

/// One of a user's connections, ranked: its rank, its device, and its id if it is local.
type Ranked = (Rank, Option<Arc<str>>, Option<ConnId>);

impl Switchboard {
    /// `user`'s connections here and on the other nodes, ranked. A local connection waiting for
    /// its epoch is left out, unless `provisional`: it is then ranked as if its epoch were the
    /// highest (it asked for it after those known here took theirs), which is good enough to
    /// count it, never to close anything.
    fn ranked_sessions(&self, user: &str, provisional: bool) -> Vec<Ranked> {
        let Some(cluster) = self.cluster.as_ref() else {
            return Vec::new();
        };
        let me = cluster.config.identity.node.shared().clone();
        let mut ranked = Vec::new();
        for &id in self.registry.user_conns(user) {
            let Some(session) = self.registry.get(id).and_then(|c| c.session()) else {
                continue;
            };
            let (authenticated_at, epoch) = match cluster.claims.get(&id) {
                Some(claim) => (claim.authenticated_at, claim.epoch),
                None if provisional => (session.authenticated_at_unix_millis, u64::MAX),
                None => continue, // not announced yet: it is ranked once it has its epoch
            };
            let rank = (authenticated_at, epoch, me.clone(), self.conn_id_text(id));
            ranked.push((rank, session.device.clone(), Some(id)));
        }
        for remote in cluster.members.user_conns(user) {
            let rank = (
                remote.conn.authenticated_at,
                remote.conn.epoch,
                Arc::from(remote.node()),
                remote.id().to_owned(),
            );
            ranked.push((rank, remote.conn.device.clone(), None));
        }
        ranked
    }

    /// The indexes of the connections in `ranked` that give way under the session policy.
    fn losers(&self, ranked: &[Ranked]) -> Vec<usize> {
        if ranked.len() < 2 {
            return Vec::new();
        }
        let view: Vec<(&Rank, Option<&str>)> =
            ranked.iter().map(|(r, d, _)| (r, d.as_deref())).collect();
        self.config.session_policy.losers(&view)
    }

    /// Closes, with 4001, this node's connections of `user` that lose to newer ones anywhere.
    pub(crate) fn settle_sessions(&mut self, now: Now, user: &str) {
        let ranked = self.ranked_sessions(user, false);
        for i in self.losers(&ranked) {
            if let Some(id) = ranked[i].2 {
                self.leave(now, id, Leave::Replaced);
            }
        }
    }

    /// How many of `user`'s connections, here and elsewhere, win under the session policy: a
    /// loser is on its way out (its node closes it, or died with it) and counts no more, so a
    /// user who reconnects elsewhere counts once, as on a single node.
    pub(crate) fn winning_sessions(&self, user: &str) -> usize {
        let ranked = self.ranked_sessions(user, true);
        ranked.len() - self.losers(&ranked).len()
    }
}
