//! What this node's own events tell the cluster: an authentication claims an epoch, a leave
//! withdraws, a subscription listens to its glob, a publish or an application command goes on
//! the bus, a drain says goodbye; and the helpers both directions share.

use std::sync::Arc;

use crate::action::{Action, CloseCode};
use crate::cluster::bus::{BusAction, Channel, Subscription};
use crate::cluster::node::{Bus, Claim};
use crate::cluster::routing::{glob_of, PendingReply};
use crate::cluster::wire::{self, ConnRecord, Header, Target};
use crate::payload::Payload;
use crate::presence::user_of_presence_pattern;
use crate::protocol::server;
use crate::registry::ConnId;
use crate::switchboard::Switchboard;
use crate::time::Now;
use crate::topics::{Pattern, Topic};

impl Switchboard {
    // ---- what local events tell the cluster --------------------------------------------------

    /// A local connection authenticated: it takes its epoch (and is announced with it).
    pub(crate) fn cluster_authenticated(&mut self, id: ConnId, authenticated_at: u64) {
        if self.cluster.as_ref().is_some_and(|c| c.joined()) {
            self.request_epoch(id, authenticated_at);
        }
    }

    /// A local connection left: withdraw it, and release the globs of its patterns.
    pub(crate) fn cluster_left(&mut self, now: Now, id: ConnId, patterns: &[Pattern]) {
        for pattern in patterns {
            self.cluster_unsubscribed(now, id, pattern);
        }
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if cluster.claims.remove(&id).is_some() && cluster.joined() {
            let (node, boot) = cluster.me();
            let header = Header::Off {
                node: node.into(),
                boot,
                conn: self.conn_id_text(id),
            };
            self.publish_header(Channel::Members, &header, None);
        }
    }

    /// A local subscription was asked for: if it is `new`, listen to its glob. Returns whether
    /// its `subscribed` reply must wait for the bus to confirm the glob (the reply is then held
    /// here), which a repeated subscribe to a pattern still waiting must too.
    pub(crate) fn cluster_subscribed(
        &mut self,
        id: ConnId,
        pattern: &Pattern,
        new: bool,
        reply_id: Option<&str>,
    ) -> bool {
        let Some(cluster) = self.cluster.as_mut() else {
            return false;
        };
        let Some(glob) = glob_of(pattern) else {
            return false;
        };
        if new && cluster.routing.hold(&glob) && cluster.bus != Bus::Down {
            cluster.routing.sent(&glob);
            self.bus(BusAction::Subscribe(Subscription::Topics(glob.clone())));
        }
        let Some(cluster) = self.cluster.as_mut() else {
            return false;
        };
        // While the bus is away the pattern is routed as far as it can be: here.
        if cluster.bus == Bus::Down || cluster.routing.is_confirmed(&glob) {
            return false;
        }
        let reply = PendingReply {
            conn: id,
            pattern: pattern.clone(),
            reply_id: reply_id.map(Into::into),
        };
        cluster.routing.wait(&glob, reply);
        true
    }

    /// A local subscription was removed: a `subscribed` still held for it is sent first, and
    /// the glob is released.
    pub(crate) fn cluster_unsubscribed(&mut self, now: Now, id: ConnId, pattern: &Pattern) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let Some(glob) = glob_of(pattern) else {
            return;
        };
        let held = cluster.routing.take_waiting(&glob, id, pattern);
        let gone = cluster.routing.release(&glob);
        let down = cluster.bus == Bus::Down || cluster.departed;
        self.reply_subscribed(now, held);
        if gone && !down {
            self.bus(BusAction::Unsubscribe(Subscription::Topics(glob)));
        }
    }

    /// A publish was delivered here: the other nodes deliver it to theirs.
    pub(crate) fn cluster_published(&mut self, topic: &Topic, frame: &Payload) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if !cluster.on_bus() {
            return;
        }
        cluster.publish_seq += 1;
        let (node, boot) = cluster.me();
        let header = Header::Publish {
            node: node.into(),
            boot,
            seq: cluster.publish_seq,
        };
        self.publish_header(Channel::Topic(topic.as_str().into()), &header, Some(frame));
    }

    /// An application push: the other nodes deliver it to their connections among `to`.
    pub(crate) fn cluster_forward_send(&mut self, to: Target, frame: &Payload) {
        let Some(cluster) = self.cluster.as_ref().filter(|c| c.on_bus()) else {
            return;
        };
        let (node, boot) = cluster.me();
        let header = Header::Send {
            node: node.into(),
            boot,
            to,
        };
        self.publish_header(Channel::Commands, &header, Some(frame));
    }

    /// An application disconnect: the other nodes close their connections among `to`.
    pub(crate) fn cluster_forward_disconnect(&mut self, to: Target, code: CloseCode, reason: &str) {
        let Some(cluster) = self.cluster.as_ref().filter(|c| c.on_bus()) else {
            return;
        };
        let (node, boot) = cluster.me();
        let header = Header::Disconnect {
            node: node.into(),
            boot,
            to,
            code: code.0,
            reason: reason.into(),
        };
        self.publish_header(Channel::Commands, &header, None);
    }

    /// The node drains: its connections leave the cluster's presence at once.
    pub(crate) fn cluster_shutdown(&mut self) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let on_bus = cluster.on_bus();
        cluster.departed = true;
        cluster.claims.clear();
        if on_bus {
            let (node, boot) = cluster.me();
            let header = Header::Bye {
                node: node.into(),
                boot,
            };
            self.publish_header(Channel::Members, &header, None);
        }
    }

    // ---- helpers --------------------------------------------------------------------------------

    /// Local connections plus those on other nodes, but for those that lose to newer ones
    /// under the session policy: the count presence reports.
    pub(crate) fn presence_count(&self, user: &str) -> usize {
        let local = self.registry.user_conns(user).len();
        match &self.cluster {
            // Alone, the connections here keep the policy among themselves.
            Some(c) if c.members.user_count(user) > 0 => self.winning_sessions(user),
            _ => local,
        }
    }

    /// The shared name of a user online anywhere.
    pub(super) fn user_key(&self, user: &str) -> Option<Arc<str>> {
        if let Some(k) = self.registry.user_key(user) {
            return Some(k.clone());
        }
        self.cluster.as_ref()?.members.user_key(user).cloned()
    }

    pub(super) fn claimed(&self, id: ConnId) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.claims.contains_key(&id))
    }

    /// Sends the `subscribed` replies that were held, and puts their subscriptions into effect
    /// (unless unsubscribed meanwhile): from here on, their messages follow the reply.
    pub(super) fn reply_subscribed(&mut self, now: Now, replies: Vec<PendingReply>) {
        for reply in replies {
            let Some(conn) = self.registry.get(reply.conn) else {
                continue;
            };
            if conn.subscriptions.contains(&reply.pattern) {
                self.topics.insert(&reply.pattern, reply.conn);
            }
            let payload = server::subscribed(
                reply.pattern.as_str(),
                reply.reply_id.as_deref(),
                now.unix_millis,
            );
            self.push_send(reply.conn, payload);
            if let Some(user) = user_of_presence_pattern(&reply.pattern) {
                let count = self.presence_count(&user);
                let payload = server::presence(&user, count > 0, count, now.unix_millis);
                self.push_send(reply.conn, payload);
            }
        }
    }

    pub(crate) fn bus(&mut self, action: BusAction) {
        self.actions.push_back(Action::Bus(action));
    }

    pub(crate) fn publish_header(
        &mut self,
        channel: Channel,
        header: &Header,
        frame: Option<&Payload>,
    ) {
        let message = wire::encode(header, frame);
        self.bus(BusAction::Publish { channel, message });
    }

    /// What this node announces of a connection it holds.
    pub(crate) fn conn_record(&self, id: ConnId, claim: Claim) -> Option<ConnRecord> {
        let conn = self.registry.get(id)?;
        let session = conn.session()?;
        Some(ConnRecord {
            id: self.conn_id_text(id),
            user: session.user.to_string(),
            device: session.device.as_deref().map(Into::into),
            device_name: conn.device_name.as_deref().map(Into::into),
            user_agent: conn.user_agent.as_deref().map(Into::into),
            ip: conn.ip.to_string(),
            connected_at: conn.connected_at_unix_millis,
            authenticated_at: claim.authenticated_at,
            epoch: claim.epoch,
            info: session.info.clone(),
        })
    }

    pub(super) fn publish_snapshot(&mut self, hello: bool) {
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        let mut claims: Vec<(ConnId, Claim)> =
            cluster.claims.iter().map(|(id, c)| (*id, *c)).collect();
        claims.sort_unstable_by_key(|(id, _)| *id);
        let conns = claims
            .into_iter()
            .filter_map(|(id, claim)| self.conn_record(id, claim))
            .collect();
        let (node, boot) = cluster.me();
        let header = Header::Snapshot {
            node: node.into(),
            boot,
            hello,
            conns,
        };
        self.publish_header(Channel::Members, &header, None);
    }

    pub(super) fn request_epoch(&mut self, id: ConnId, authenticated_at: u64) {
        let Some(user) = self
            .registry
            .get(id)
            .and_then(|c| c.session())
            .map(|s| s.user.clone())
        else {
            return;
        };
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        cluster.next_request += 1;
        let request = cluster.next_request;
        cluster.awaiting.insert(request, (id, authenticated_at));
        self.bus(BusAction::NextEpoch { user, request });
    }

    pub(super) fn on_epoch(&mut self, now: Now, request: u64, epoch: u64) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let Some((id, authenticated_at)) = cluster.awaiting.remove(&request) else {
            return;
        };
        let claim = Claim {
            authenticated_at,
            epoch,
        };
        let Some(record) = self.conn_record(id, claim) else {
            return; // it left meanwhile
        };
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        cluster.claims.insert(id, claim);
        let (node, boot) = cluster.me();
        let user = record.user.clone();
        let header = Header::On {
            node: node.into(),
            boot,
            conn: record,
        };
        self.publish_header(Channel::Members, &header, None);
        // A newer connection of the same session elsewhere wins over this one.
        self.change_remote(now, &[user], |_| {});
    }
}
