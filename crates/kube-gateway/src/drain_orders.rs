//! Control's drain orders as this gateway holds them. Every stats reply carries control's whole current
//! order, so the orders are replaced, not merged, each round: an address that leaves them takes traffic
//! again. With several control replicas only the leader orders (the standby answers with none), so the
//! orders of one round are the union over every replica that answered.

use crate::sync::ServedRevision;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use swell_kube_api::stats::{RevisionKey, StatsReply};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainOrders {
    by_revision: BTreeMap<RevisionKey, BTreeSet<SocketAddr>>,
}

impl DrainOrders {
    /// The orders of one round's replies.
    pub fn union<'a>(replies: impl IntoIterator<Item = &'a StatsReply>) -> Self {
        let mut by_revision: BTreeMap<RevisionKey, BTreeSet<SocketAddr>> = BTreeMap::new();
        for order in replies.into_iter().flat_map(|reply| &reply.drain) {
            by_revision.entry(order.key()).or_default().extend(order.addresses.iter().copied());
        }
        DrainOrders { by_revision }
    }

    /// Addresses ordered drained for `revision`, sorted.
    pub fn of(&self, revision: &RevisionKey) -> impl Iterator<Item = SocketAddr> + '_ {
        self.by_revision.get(revision).into_iter().flatten().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.by_revision.values().all(BTreeSet::is_empty)
    }

    /// Hold each served revision's ordered replicas out of its ready set, and readmit the rest.
    pub fn apply(&self, served: &HashMap<RevisionKey, ServedRevision>) {
        for (key, revision) in served {
            revision.readiness.set_drain(self.of(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swell_kube_api::stats::DrainOrder;

    fn order(name: &str, addrs: &[&str]) -> DrainOrder {
        DrainOrder {
            namespace: "ml".into(),
            name: name.into(),
            addresses: addrs.iter().map(|a| a.parse().expect("an address")).collect(),
        }
    }

    #[test]
    fn one_round_is_the_union_of_every_reply() {
        let leader = StatsReply { drain: vec![order("bert", &["10.0.0.1:8501"]), order("gpt", &["10.0.0.9:80"])] };
        let standby = StatsReply::default();
        let late = StatsReply { drain: vec![order("bert", &["10.0.0.2:8501", "10.0.0.1:8501"])] };
        let orders = DrainOrders::union([&leader, &standby, &late]);
        let bert: Vec<String> = orders.of(&RevisionKey::new("ml", "bert")).map(|a| a.to_string()).collect();
        assert_eq!(bert, ["10.0.0.1:8501", "10.0.0.2:8501"]);
        assert_eq!(orders.of(&RevisionKey::new("ml", "gpt")).count(), 1);
        assert_eq!(orders.of(&RevisionKey::new("other", "bert")).count(), 0);
        assert!(DrainOrders::union([&standby]).is_empty());
    }
}
