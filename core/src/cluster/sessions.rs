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

use crate::switchboard::{Leave, Switchboard};
use crate::time::Now;

/// A connection's place in the order of its user's sessions; the greatest is the newest.
type Rank = (u64, u64, Arc<str>, String);

impl Switchboard {
    /// Closes, with 4001, this node's connections of `user` that lose to newer ones anywhere.
    pub(crate) fn settle_sessions(&mut self, now: Now, user: &str) {
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        let me = cluster.config.identity.node.shared().clone();
        // (rank, device, the local connection if it is one)
        let mut ranked: Vec<(Rank, Option<Arc<str>>, Option<crate::ConnId>)> = Vec::new();
        for &id in self.registry.user_conns(user) {
            let (Some(claim), Some(session)) = (
                cluster.claims.get(&id),
                self.registry.get(id).and_then(|c| c.session()),
            ) else {
                continue; // not announced yet: it is ranked once it has its epoch
            };
            let rank = (
                claim.authenticated_at,
                claim.epoch,
                me.clone(),
                self.conn_id_text(id),
            );
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
        if ranked.len() < 2 {
            return;
        }
        let view: Vec<(&Rank, Option<&str>)> =
            ranked.iter().map(|(r, d, _)| (r, d.as_deref())).collect();
        let losers = self.config.session_policy.losers(&view);
        for i in losers {
            if let Some(id) = ranked[i].2 {
                self.leave(now, id, Leave::Replaced);
            }
        }
    }
}
