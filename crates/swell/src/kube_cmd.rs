//! The Kubernetes subcommands: `swell crds` prints the CRDs (what `deploy/crds/` holds), `swell control`
//! runs the leader-elected controller and autoscaler in the cluster, `swell gateway` the data path there.
//! The logic lives in `swell-kube`; this module only turns command-line arguments and the pod's environment
//! into its options.

use anyhow::Context as _;

/// `swell crds`: both CRDs as one YAML stream, for `kubectl apply -f -` or `deploy/crds/`.
pub fn crds() -> anyhow::Result<()> {
    print!("{}", swell_kube::crd::crds_yaml().context("serializing the CRDs")?);
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    /// Namespace of the Lease and the swell-placement / swell-autoscaler ConfigMaps [default: $POD_NAMESPACE,
    /// else swell-system].
    #[arg(long)]
    pub namespace: Option<String>,
    /// This replica's identity in the Lease [default: $POD_NAME, else the host name].
    #[arg(long)]
    pub identity: Option<String>,
    /// Where gateways push statistics and pokes, and Prometheus scrapes `/metrics`.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub listen: std::net::SocketAddr,
}

/// `swell control`: in-cluster (or kubeconfig) client, then the controller until stopped.
pub async fn control(args: ControlArgs) -> anyhow::Result<()> {
    let options = swell_kube::control::ControlOptions {
        namespace: args.namespace.or_else(|| env("POD_NAMESPACE")).unwrap_or_else(|| "swell-system".to_owned()),
        identity: identity(args.identity)?,
        listen: args.listen,
    };
    let client = swell_kube::control::connect().await.context("connecting to the Kubernetes API")?;
    tokio::select! {
        res = swell_kube::control::run(client, options) => res.context("swell control")?,
        // Returning drops the Lease watch receiver, which releases the Lease: the standby takes over at once.
        () = crate::serve::shutdown_signal() => tracing::info!("stopping"),
    }
    Ok(())
}

/// A non-empty environment variable.
fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// This replica's name: the flag, else the pod's name, else the host name.
fn identity(flag: Option<String>) -> anyhow::Result<String> {
    flag.or_else(|| env("POD_NAME")).or_else(|| env("HOSTNAME")).context("no identity: pass --identity or set POD_NAME")
}

#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// Where clients connect.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`, `/v1/status`.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub admin_listen: std::net::SocketAddr,
    /// `host:port` of the headless swell-control Service; stats and pokes go to every address it resolves to.
    #[arg(long, default_value = "swell-control.swell-system.svc:9090")]
    pub control: String,
    /// This replica's name in stats reports [default: $POD_NAME, else the host name].
    #[arg(long)]
    pub identity: Option<String>,
    /// Requests a revision may hold waiting for a replica before answering 503.
    #[arg(long, default_value_t = 10_000)]
    pub max_queued_requests: usize,
    /// Largest request body accepted (larger gets 413); 0 means no limit.
    #[arg(long, default_value_t = 0)]
    pub max_body_bytes: u64,
    /// Request-body bytes a revision's queue may hold (declared lengths of waiting requests); 0 means no
    /// limit [default: 268435456, or --max-body-bytes when larger].
    #[arg(long)]
    pub max_queued_body_bytes: Option<u64>,
    /// Serve plain HTTP/1.1 requests on the gateway's own fast path; `false` sends all through hyper.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub fast_path: bool,
}

impl GatewayArgs {
    /// The same rule as `gateway.maxQueuedBodyBytes` in a config: a nonzero bound under the body limit
    /// would leave requests the gateway accepts unable ever to wait.
    pub fn validate(&self) -> Result<(), String> {
        match self.max_queued_body_bytes {
            Some(queued) if queued > 0 && queued < self.max_body_bytes => Err(format!(
                "--max-queued-body-bytes: {queued} is out of range; allowed: 0 (no limit) or at least \
                 --max-body-bytes ({})",
                self.max_body_bytes
            )),
            _ => Ok(()),
        }
    }
}

/// `swell gateway`: routes, activates and reports statistics, from Routes, Revisions and EndpointSlices.
pub async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let options = swell_kube::gateway::GatewayOptions {
        listen: args.listen,
        admin_listen: args.admin_listen,
        control: args.control,
        identity: identity(args.identity)?,
        max_queued: args.max_queued_requests,
        max_body_bytes: args.max_body_bytes,
        max_queued_body_bytes: args
            .max_queued_body_bytes
            .unwrap_or(swell_api::config::DEFAULT_MAX_QUEUED_BODY_BYTES.max(args.max_body_bytes)),
        fast_path: args.fast_path,
    };
    let client = swell_kube::control::connect().await.context("connecting to the Kubernetes API")?;
    tokio::select! {
        res = swell_kube::gateway::run(client, options) => res.context("swell gateway")?,
        () = crate::serve::shutdown_signal() => tracing::info!("stopping"),
    }
    Ok(())
}
