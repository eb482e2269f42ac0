//! The Kubernetes subcommands: `swell crds` prints the CRDs (what `deploy/crds/` holds), `swell control`
//! runs the leader-elected controller and autoscaler in the cluster, `swell gateway` the data path there.
//! The logic lives in `swell-kube-api`, `swell-control` and `swell-kube-gateway`; this module only turns
//! command-line arguments and the pod's environment into their options.
//!
//! Control's stats and poke endpoint steers the autoscaler, so both commands need `--token-file`, the
//! token gateways show control (a Secret mounted in both). Without it they refuse to start unless
//! `--insecure-no-token` says to run open, and then say so in a warning: an unauthenticated control plane
//! should be a decision, never the default left by a forgotten flag.

use anyhow::Context as _;

/// `swell crds`: both CRDs as one YAML stream, for `kubectl apply -f -` or `deploy/crds/`.
pub fn crds() -> anyhow::Result<()> {
    crate::output::stdout(&swell_kube_api::crd::crds_yaml().context("serializing the CRDs")?)?;
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
    #[command(flatten)]
    pub token: TokenArgs,
}

impl ControlArgs {
    /// The flags checked before anything starts, with errors naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        self.token.read().map(drop)
    }
}

/// The control-plane token, the same two flags on `swell control` and `swell gateway`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// File holding the token gateways send control with every stats report and poke (`Authorization:
    /// Bearer`), e.g. a mounted Secret's key; surrounding whitespace is ignored. Control answers 401 to
    /// writes without it.
    #[arg(long, value_name = "PATH", conflicts_with = "insecure_no_token")]
    pub token_file: Option<std::path::PathBuf>,
    /// Run without a token: control takes stats and pokes from anyone who reaches its port, gateways send
    /// none. Only for a trial on a cluster nobody else can reach.
    #[arg(long)]
    pub insecure_no_token: bool,
}

/// A token file is a few dozen bytes; reading stops past this, so a wrong path (a log, a device) fails
/// quickly instead of filling memory.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

impl TokenArgs {
    /// The token, `None` under `--insecure-no-token`, or an error naming the flag, the path and what is
    /// allowed (never the file's content: it may be a secret, only in the wrong shape).
    pub fn read(&self) -> Result<Option<String>, String> {
        use std::io::Read as _;
        let Some(path) = &self.token_file else {
            return if self.insecure_no_token {
                Ok(None)
            } else {
                Err("--token-file: missing; allowed: --token-file PATH, a file holding the token that gateways and \
                     control share (a mounted Secret), or --insecure-no-token to run without one"
                    .to_owned())
            };
        };
        let shown = path.display();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_TOKEN_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|error| format!("--token-file: {shown} cannot be read ({error}); allowed: a readable file"))?;
        if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
            return Err(format!(
                "--token-file: {shown} is larger than {MAX_TOKEN_FILE_BYTES} bytes; allowed: a file holding only the token"
            ));
        }
        let token = bytes.trim_ascii();
        if token.is_empty() {
            return Err(format!("--token-file: {shown} is empty; allowed: a file holding the token"));
        }
        // Not UTF-8 is not visible ASCII either: both get the same error.
        let token = String::from_utf8_lossy(token);
        swell_kube_gateway::push::ControlToken::new(&token)
            .map_err(|allowed| format!("--token-file: the token in {shown} is not usable; {allowed}"))?;
        Ok(Some(token.into_owned()))
    }
}

/// `swell control`: in-cluster (or kubeconfig) client, then the controller until stopped.
pub async fn control(args: ControlArgs) -> anyhow::Result<()> {
    // Before anything starts, so a SIGTERM at any point after start-up is a graceful stop.
    let mut signals = crate::serve::ShutdownSignals::install().context("installing the SIGTERM and SIGINT handlers")?;
    let token = args.token.read().map_err(anyhow::Error::msg)?;
    if token.is_none() {
        tracing::warn!(listen = %args.listen, "--insecure-no-token: anyone who reaches this port can send stats and pokes");
    }
    let options = swell_control::ControlOptions {
        namespace: args.namespace.or_else(|| env("POD_NAMESPACE")).unwrap_or_else(|| "swell-system".to_owned()),
        identity: identity(args.identity)?,
        listen: args.listen,
        // `read` refuses an empty token, the only one `GatewayToken::new` turns down.
        token: token.as_deref().and_then(swell_control::autoscale::GatewayToken::new),
    };
    let client = swell_kube_api::connect().await.context("connecting to the Kubernetes API")?;
    tokio::select! {
        res = swell_control::run(client, options) => res.context("swell control")?,
        // Returning drops the Lease watch receiver, which releases the Lease: the standby takes over at once.
        () = signals.recv() => tracing::info!("stopping"),
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
    /// One JSON line per request on standard output (request id, route, revision, status, durations,
    /// cold-start wait, bytes); the config's `gateway.accessLog`.
    #[arg(long)]
    pub access_log: bool,
    /// On SIGTERM, how long `/readyz` answers 503 while requests are still served, so endpoints and load
    /// balancers stop sending traffic before the listener closes (Go-style duration: "5s", "1m"). The
    /// default leaves room in Kubernetes' default 30 s termination grace for in-flight requests to finish
    /// (up to 10 s more) after it. A second SIGTERM or Ctrl-C skips the rest of the delay.
    #[arg(long, default_value = DEFAULT_DRAIN_DELAY)]
    pub drain_delay: String,
    /// A client must send a whole request head within this (Go-style duration; nginx's
    /// `client_header_timeout`); the config's `gateway.headerReadTimeout`.
    #[arg(long, default_value = "60s")]
    pub header_read_timeout: String,
    /// Longest pause between two reads of a request body (nginx's `client_body_timeout`);
    /// `gateway.bodyReadTimeout`.
    #[arg(long, default_value = "60s")]
    pub body_read_timeout: String,
    /// A kept-alive connection with no request in progress closes after this (nginx's
    /// `keepalive_timeout`); `gateway.idleTimeout`.
    #[arg(long, default_value = "75s")]
    pub idle_timeout: String,
    /// Longest a client may take to accept more response bytes; then the connection closes and the
    /// request's slot is released (nginx's `send_timeout`); `gateway.sendTimeout`.
    #[arg(long, default_value = "60s")]
    pub send_timeout: String,
    /// Client connections held open at once across all threads; 0 derives it from the open-files limit.
    #[arg(long, default_value_t = 0)]
    pub max_connections: u64,
    /// Connections the admin listener holds open at once, apart from the clients' budget (1 or more).
    #[arg(long, default_value_t = 64)]
    pub admin_max_connections: u64,
    #[command(flatten)]
    pub token: TokenArgs,
}

impl GatewayArgs {
    /// The flags checked by the same rules as a config's `gateway:` and `admin:` sections, with errors
    /// naming the flags.
    pub fn validate(&self) -> Result<(), String> {
        self.drain_delay()?;
        let (gateway, admin) = self.listener_config()?;
        swell_api::config::validate_listeners(&gateway, &admin).map_err(|error| as_flags(&error.to_string()))?;
        self.token.read().map(drop)
    }
}

/// A config error in flag terms: `gateway.maxQueuedBodyBytes` is `--max-queued-body-bytes`, `admin.listen`
/// is `--admin-listen` (the flags are the keys in kebab case, the admin ones prefixed).
fn as_flags(message: &str) -> String {
    let next_key = |text: &str| {
        ["gateway.", "admin."].into_iter().filter_map(|section| text.find(section).map(|at| (at, section))).min()
    };
    let mut out = String::with_capacity(message.len() + 8);
    let mut rest = message;
    while let Some((at, section)) = next_key(rest) {
        out.push_str(&rest[..at]);
        let key = &rest[at + section.len()..];
        let len = key.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(key.len());
        out.push_str(if section == "admin." { "--admin-" } else { "--" });
        for c in key[..len].chars() {
            if c.is_ascii_uppercase() {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        rest = &key[len..];
    }
    out.push_str(rest);
    out
}
impl GatewayArgs {
    /// `--drain-delay` as a duration, or an error naming the flag, the value and what is allowed.
    pub fn drain_delay(&self) -> Result<std::time::Duration, String> {
        swell_api::duration::parse(&self.drain_delay).map_err(|error| {
            format!(
                "--drain-delay: {:?} is not allowed ({error}); allowed: a Go-style duration of 0 or more, e.g. \"5s\"",
                self.drain_delay
            )
        })
    }
}

/// The connection timeouts and limits, with the ranges of their `gateway:` / `admin:` config keys.
impl GatewayArgs {
    pub fn header_read_timeout(&self) -> Result<std::time::Duration, String> {
        positive_duration("--header-read-timeout", &self.header_read_timeout)
    }

    pub fn body_read_timeout(&self) -> Result<std::time::Duration, String> {
        positive_duration("--body-read-timeout", &self.body_read_timeout)
    }

    pub fn idle_timeout(&self) -> Result<std::time::Duration, String> {
        positive_duration("--idle-timeout", &self.idle_timeout)
    }

    pub fn send_timeout(&self) -> Result<std::time::Duration, String> {
        positive_duration("--send-timeout", &self.send_timeout)
    }

    /// The flags as the config's `gateway:` and `admin:` sections, so both commands derive their
    /// listeners' limits the same way (`crate::limits`).
    fn listener_config(&self) -> Result<(swell_api::config::GatewayConfig, swell_api::config::AdminConfig), String> {
        let gateway = swell_api::config::GatewayConfig {
            listen: self.listen,
            max_queued_requests: self.max_queued_requests,
            max_body_bytes: self.max_body_bytes,
            max_queued_body_bytes: self.max_queued_body_bytes,
            fast_path: self.fast_path,
            header_read_timeout: self.header_read_timeout()?,
            body_read_timeout: self.body_read_timeout()?,
            idle_timeout: self.idle_timeout()?,
            send_timeout: self.send_timeout()?,
            max_connections: self.max_connections,
            ..swell_api::config::GatewayConfig::default()
        };
        let admin =
            swell_api::config::AdminConfig { listen: self.admin_listen, max_connections: self.admin_max_connections };
        Ok((gateway, admin))
    }
}

/// A timeout flag: a Go-style duration above zero (zero would close every connection at once).
fn positive_duration(flag: &str, value: &str) -> Result<std::time::Duration, String> {
    match swell_api::duration::parse(value) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) | Err(swell_api::duration::DurationError::Negative) => {
            Err(format!("{flag}: {value:?} is out of range; allowed: more than 0"))
        }
        Err(swell_api::duration::DurationError::Invalid) => Err(format!(
            "{flag}: {value:?} is not a duration; allowed: a number with a unit (h, m, s, ms), e.g. \"60s\""
        )),
    }
}

/// `--drain-delay` unless given.
const DEFAULT_DRAIN_DELAY: &str = "5s";

/// `swell gateway`: routes, activates and reports statistics, from Routes, Revisions and EndpointSlices;
/// drains on SIGTERM or Ctrl-C (see `swell_kube_gateway::run`) and returns.
pub async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    // Before anything starts, so a SIGTERM at any point after start-up is a graceful stop.
    let mut signals = crate::serve::ShutdownSignals::install().context("installing the SIGTERM and SIGINT handlers")?;
    let drain_delay = args.drain_delay().map_err(anyhow::Error::msg)?;
    let (gateway_config, admin_config) = args.listener_config().map_err(anyhow::Error::msg)?;
    let control_token = args.token.read().map_err(anyhow::Error::msg)?;
    if control_token.is_none() {
        tracing::warn!(control = %args.control, "--insecure-no-token: stats and pokes go to control without a token");
    }
    let control_token = control_token
        .map(|token| swell_kube_gateway::push::ControlToken::new(&token).map_err(anyhow::Error::msg))
        .transpose()?;
    let open_files = crate::limits::raise_open_files_limit();
    let options = swell_kube_gateway::GatewayOptions {
        worker_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        listen: args.listen,
        admin_listen: args.admin_listen,
        control: args.control,
        control_token,
        identity: identity(args.identity)?,
        max_queued: args.max_queued_requests,
        max_body_bytes: args.max_body_bytes,
        access_log: args.access_log,
        max_queued_body_bytes: args
            .max_queued_body_bytes
            .unwrap_or(swell_api::config::DEFAULT_MAX_QUEUED_BODY_BYTES.max(args.max_body_bytes)),
        limits: crate::limits::gateway(&gateway_config, &admin_config, open_files, 1),
        admin_limits: crate::limits::admin(&gateway_config, &admin_config),
        drain_delay,
    };
    // Every signal becomes a stop message: the first starts the drain, a second cuts its delay short.
    let (stop_tx, stop_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            signals.recv().await;
            if stop_tx.send(()).is_err() {
                break;
            }
        }
    });
    let client = swell_kube_api::connect().await.context("connecting to the Kubernetes API")?;
    swell_kube_gateway::run(client, options, stop_rx).await.context("swell gateway")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        gateway: GatewayArgs,
    }

    #[test]
    fn config_keys_in_a_message_become_flags() {
        assert_eq!(
            as_flags("gateway.maxQueuedBodyBytes: 10 is out of range; allowed: at least gateway.maxBodyBytes (100)"),
            "--max-queued-body-bytes: 10 is out of range; allowed: at least --max-body-bytes (100)"
        );
        assert_eq!(as_flags("admin.listen 0.0.0.0:9090 clashes"), "--admin-listen 0.0.0.0:9090 clashes");
        assert_eq!(as_flags("admin.maxConnections: 0"), "--admin-max-connections: 0");
    }

    #[test]
    fn the_drain_delay_is_a_go_duration_and_defaults_to_five_seconds() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("gateway").chain(args.iter().copied())).expect("parses").gateway
        };
        assert_eq!(parse(&[]).drain_delay(), Ok(std::time::Duration::from_secs(5)));
        assert_eq!(parse(&["--drain-delay", "1m30s"]).drain_delay(), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(parse(&["--drain-delay", "0"]).drain_delay(), Ok(std::time::Duration::ZERO));
        let error = parse(&["--drain-delay", "5 seconds"]).validate().expect_err("not a duration");
        assert!(error.starts_with("--drain-delay: \"5 seconds\" is not allowed"), "{error}");
        assert!(parse(&["--drain-delay=-1s"]).validate().is_err());
    }
}
