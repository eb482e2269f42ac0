//! The Kubernetes subcommands: `swell crds` prints the CRDs (what `deploy/crds/` holds), `swell control`
//! runs the leader-elected controller in the cluster. The logic lives in `swell-kube`; this module only
//! turns command-line arguments and the pod's environment into its options.

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
}

/// `swell control`: in-cluster (or kubeconfig) client, then the controller until stopped.
pub async fn control(args: ControlArgs) -> anyhow::Result<()> {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let options = swell_kube::control::ControlOptions {
        namespace: args.namespace.or_else(|| env("POD_NAMESPACE")).unwrap_or_else(|| "swell-system".to_owned()),
        identity: args
            .identity
            .or_else(|| env("POD_NAME"))
            .or_else(|| env("HOSTNAME"))
            .context("no identity: pass --identity or set POD_NAME")?,
    };
    let client = swell_kube::control::connect().await.context("connecting to the Kubernetes API")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        res = swell_kube::control::run(client, options) => res.context("swell control")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        // Returning drops the Lease watch receiver, which releases the Lease: the standby takes over at once.
        _ = term.recv() => tracing::info!("terminated"),
    }
    Ok(())
}
