//! What Swell's two Kubernetes programs, `swell control` (crate `swell-control`) and the in-cluster
//! `swell gateway` (crate `swell-kube-gateway`), have in common and nothing that runs: the `Revision`
//! and `Route` CRDs over the shared specs in `swell-api` (`crd`), the labels Swell puts on what it
//! creates, status conditions, the reasons an object is invalid, the statistics and drain orders the
//! gateways and control exchange (`stats`), and the error type.

pub mod condition;
pub mod crd;
pub mod error;
pub mod labels;
pub mod stats;
pub mod validate;

pub use error::{Error, Result};

/// A client from the in-cluster service account, or the kubeconfig outside a cluster.
pub async fn connect() -> Result<kube::Client> {
    Ok(kube::Client::try_default().await?)
}
