//! The drain orders as gateways read them: the leader's autoscaler publishes the whole list after each
//! change, and control's HTTP listener answers every `POST /v1/stats` with it. One immutable snapshot
//! behind an `ArcSwap`, its JSON encoded once per change rather than once per report; a standby never
//! publishes, so it answers an empty list.

use arc_swap::ArcSwap;
use bytes::Bytes;
use std::sync::Arc;
use swell_kube_api::stats::{DrainOrder, StatsReply};

#[derive(Debug)]
struct Snapshot {
    reply: StatsReply,
    json: Bytes,
}

impl Snapshot {
    fn new(reply: StatsReply) -> Self {
        // A reply is strings and socket addresses: encoding it cannot fail.
        let json = serde_json::to_vec(&reply).map(Bytes::from).unwrap_or_else(|_| Bytes::from_static(b"{}"));
        Self { reply, json }
    }
}

/// Shared between the autoscaler (writes) and the listener (reads); clones share the snapshot.
#[derive(Debug, Clone)]
pub struct DrainBoard(Arc<ArcSwap<Snapshot>>);

impl Default for DrainBoard {
    fn default() -> Self {
        Self(Arc::new(ArcSwap::from_pointee(Snapshot::new(StatsReply::default()))))
    }
}

impl DrainBoard {
    /// Replaces the list, unless it is the one already published.
    pub fn publish(&self, drain: Vec<DrainOrder>) {
        if self.0.load().reply.drain != drain {
            self.0.store(Arc::new(Snapshot::new(StatsReply { drain })));
        }
    }

    pub fn orders(&self) -> Vec<DrainOrder> {
        self.0.load().reply.drain.clone()
    }

    /// The reply to a stats report, as JSON.
    pub fn reply_json(&self) -> Bytes {
        self.0.load().json.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_the_whole_list_as_the_reply() {
        let board = DrainBoard::default();
        let reader = board.clone();
        assert_eq!(&reader.reply_json()[..], br#"{"drain":[]}"#);
        let order = DrainOrder {
            namespace: "ml".into(),
            name: "bert".into(),
            addresses: vec!["10.0.0.7:8501".parse().expect("addr")],
        };
        board.publish(vec![order.clone()]);
        assert_eq!(reader.orders(), [order]);
        assert_eq!(
            &reader.reply_json()[..],
            br#"{"drain":[{"namespace":"ml","name":"bert","addresses":["10.0.0.7:8501"]}]}"#
        );
        board.publish(Vec::new());
        assert_eq!(&reader.reply_json()[..], br#"{"drain":[]}"#);
    }
}
