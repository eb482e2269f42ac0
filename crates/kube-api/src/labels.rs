//! The labels Swell puts on what it creates. Pods carry the revision and the pool, so the headless
//! Service selects every pod of a revision while each Deployment selects only its own pool's pods.

use std::collections::BTreeMap;

/// Which of a revision's Deployments (and so which pool) a pod or a scale step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `<rev>`: regular nodes, or in scheduler mode the single Deployment.
    Regular,
    /// `<rev>-burst`: the burst pool.
    Burst,
}

impl Role {
    pub fn deployment_name(self, revision: &str) -> String {
        match self {
            Role::Regular => revision.to_owned(),
            Role::Burst => format!("{revision}-burst"),
        }
    }
}

pub const REVISION: &str = "serving.swell.dev/revision";
pub const POOL: &str = "serving.swell.dev/pool";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

pub fn revision(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(REVISION.to_owned(), name.to_owned())])
}

/// A Deployment's selector and its pods' identifying labels.
pub fn pods(name: &str, role: Role) -> BTreeMap<String, String> {
    let mut labels = revision(name);
    labels.insert(POOL.to_owned(), role_value(role).to_owned());
    labels
}

/// Labels on the objects themselves.
pub fn object(name: &str, role: Option<Role>) -> BTreeMap<String, String> {
    let mut labels = role.map_or_else(|| revision(name), |r| pods(name, r));
    labels.insert(MANAGED_BY.to_owned(), "swell".to_owned());
    labels
}

fn role_value(role: Role) -> &'static str {
    match role {
        Role::Regular => "regular",
        Role::Burst => "burst",
    }
}
