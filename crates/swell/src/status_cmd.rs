//! `swell status`: what a running `swell serve` is doing, read from its admin API (`/v1/status`) and shown
//! as kubectl-style tables of revisions, routes and engine replicas, or as the JSON document itself (`-o json`); `--watch`
//! refreshes every second until Ctrl-C. The admin address is `--admin`, else `admin.listen` from the config
//! file (only that key is read, so a config mid-edit still tells where the admin listens). The request is a
//! plain HTTP/1.0 GET over a blocking socket: one short exchange on loopback needs no runtime.

use anyhow::{Context, bail};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for the admin listener to accept and to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Admin address of the running `swell serve`, HOST:PORT [default: `admin.listen` from --config].
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// Config file to read `admin.listen` from when --admin is not given.
    #[arg(long, default_value = "config/local.yaml")]
    pub config: PathBuf,
    /// Output format: `table` (revisions and routes) or `json` (the `/v1/status` document).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Print again every second until Ctrl-C.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let admin = match &args.admin {
        Some(admin) => parse_admin(admin)?,
        None => admin_from_config(&args.config)?,
    };
    if !args.watch {
        return show(&fetch_status(admin)?, args.output);
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        if terminal {
            // Clear the screen and home the cursor, as `watch` does.
            print!("\x1b[2J\x1b[H");
        }
        match fetch_status(admin) {
            Ok(status) => show(&status, args.output)?,
            // A restarting server is worth watching through: say so and keep polling.
            Err(error) => eprintln!("error: {error:#}"),
        }
        std::io::stdout().flush()?;
        std::thread::sleep(WATCH_INTERVAL);
    }
}

fn show(status: &Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(status)?),
        Output::Table => print!("{}", render(status)),
    }
    Ok(())
}

/// `--admin`: HOST:PORT (a name is resolved), with or without `http://`.
fn parse_admin(value: &str) -> anyhow::Result<SocketAddr> {
    let bare = value.strip_prefix("http://").unwrap_or(value).trim_end_matches('/');
    let resolved = bare.to_socket_addrs().ok().and_then(|mut addrs| addrs.next());
    match resolved {
        Some(addr) => Ok(reachable(addr)),
        None => bail!("--admin: {value:?} is not an address; allowed: HOST:PORT, e.g. 127.0.0.1:9090"),
    }
}

/// `admin.listen` from the config file at `path`, or its default when the file has no `admin.listen`.
fn admin_from_config(path: &Path) -> anyhow::Result<SocketAddr> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} for admin.listen (or give --admin ADDR)", path.display()))?;
    admin_from_yaml(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

fn admin_from_yaml(text: &str) -> Result<SocketAddr, String> {
    let document: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|error| format!("not YAML ({error}); give --admin ADDR instead"))?;
    let listen = match document.get("admin").and_then(|admin| admin.get("listen")) {
        None => return Ok(reachable(swell_api::config::AdminConfig::default().listen)),
        Some(listen) => listen,
    };
    let addr = listen.as_str().and_then(|text| text.parse::<SocketAddr>().ok());
    match addr {
        Some(addr) => Ok(reachable(addr)),
        None => Err(format!(
            "admin.listen: {} is not an address; allowed: IP:PORT, e.g. \"127.0.0.1:9090\"",
            serde_yaml_ng::to_string(listen).unwrap_or_default().trim()
        )),
    }
}

/// A server listening on every address (0.0.0.0 or ::) is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

fn fetch_status(admin: SocketAddr) -> anyhow::Result<Value> {
    let body = get(admin, "/v1/status")
        .with_context(|| format!("cannot read the admin API at {admin} (is `swell serve` running? see --admin)"))?;
    serde_json::from_str(&body).with_context(|| format!("{admin}/v1/status did not answer JSON"))
}

/// One GET; HTTP/1.0, so the answer is never chunked and ends when the server closes.
fn get(admin: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&admin, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {admin}\r\nAccept: application/json\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    body_of(&String::from_utf8_lossy(&response))
}

/// The body of a whole HTTP/1 response, or an error naming its status.
fn body_of(response: &str) -> anyhow::Result<String> {
    let Some((head, body)) = response.split_once("\r\n\r\n") else { bail!("incomplete HTTP response") };
    let status = head.lines().next().and_then(|line| line.split_whitespace().nth(1)).unwrap_or_default();
    if status != "200" {
        bail!("HTTP {status}: {}", body.trim());
    }
    Ok(body.to_owned())
}

/// The revisions table, a blank line, the routes table; then, when some revision's engine is scraped, a
/// blank line and its replicas' engine signals.
pub(crate) fn render(status: &Value) -> String {
    let empty = Vec::new();
    let revisions = status["revisions"].as_array().unwrap_or(&empty);
    let routes = status["routes"].as_array().unwrap_or(&empty);
    let number = |value: &Value| value.as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string());
    let mut rows = vec![
        ["NAME", "DESIRED", "READY", "STARTING", "DRAINING", "IN-FLIGHT", "QUEUED", "RPS", "LAST DECISION"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for revision in revisions {
        rows.push(vec![
            revision["name"].as_str().unwrap_or("?").to_owned(),
            number(&revision["desired"]),
            number(&revision["ready"]),
            number(&revision["starting"]),
            number(&revision["draining"]),
            number(&revision["inFlight"]),
            number(&revision["queued"]),
            revision["rps"].as_f64().map_or_else(|| "-".to_owned(), |rps| format!("{rps:.1}")),
            last_decision(&revision["lastDecision"]),
        ]);
    }
    let mut out = table(&rows);
    out.push('\n');
    let mut rows = vec![["NAME", "HOSTS", "PATH", "TRAFFIC"].map(str::to_owned).to_vec()];
    for route in routes {
        let hosts: Vec<&str> = route["hosts"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        rows.push(vec![
            route["name"].as_str().unwrap_or("?").to_owned(),
            if hosts.is_empty() { "*".to_owned() } else { hosts.join(",") },
            route["pathPrefix"].as_str().unwrap_or("/").to_owned(),
            traffic(&route["traffic"]),
        ]);
    }
    out.push_str(&table(&rows));
    let engines = engine_replicas(revisions);
    if engines.len() > 1 {
        out.push('\n');
        out.push_str(&table(&engines));
    }
    out
}

/// One row per ready replica of a revision whose engine is scraped (`replicas[].engine` in the status):
/// the engine's queue, running requests and KV-cache use, `-` before its first scrape.
fn engine_replicas(revisions: &[Value]) -> Vec<Vec<String>> {
    let mut rows = vec![
        ["REVISION", "REPLICA", "IN-FLIGHT", "WAITING", "RUNNING", "KV-CACHE", "STALE"].map(str::to_owned).to_vec(),
    ];
    let number = |value: &Value| value.as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string());
    for revision in revisions {
        let name = revision["name"].as_str().unwrap_or("?");
        for replica in revision["replicas"].as_array().into_iter().flatten() {
            let engine = &replica["engine"];
            if !engine.is_object() {
                continue;
            }
            rows.push(vec![
                name.to_owned(),
                replica["address"].as_str().unwrap_or("?").to_owned(),
                number(&replica["inFlight"]),
                number(&engine["waiting"]),
                number(&engine["running"]),
                engine["kvCacheUse"].as_f64().map_or_else(|| "-".to_owned(), |kv| format!("{:.0}%", kv * 100.0)),
                if engine["stale"].as_bool() == Some(true) { "yes" } else { "no" }.to_owned(),
            ]);
        }
    }
    rows
}

/// The reason, `[panic]` while in panic mode; `-` for a revision the autoscaler does not manage (or has
/// not decided for yet).
fn last_decision(decision: &Value) -> String {
    match decision["reason"].as_str() {
        None => "-".to_owned(),
        Some(reason) if decision["inPanic"].as_bool() == Some(true) => format!("{reason} [panic]"),
        Some(reason) => reason.to_owned(),
    }
}

/// `model-v1=90%, model-v2=10% (tag canary)`.
fn traffic(targets: &Value) -> String {
    let targets: Vec<String> = targets
        .as_array()
        .into_iter()
        .flatten()
        .map(|target| {
            let name = target["revisionName"].as_str().unwrap_or("?");
            let percent = target["percent"].as_u64().unwrap_or(0);
            match target["tag"].as_str() {
                Some(tag) => format!("{name}={percent}% (tag {tag})"),
                None => format!("{name}={percent}%"),
            }
        })
        .collect();
    if targets.is_empty() { "-".to_owned() } else { targets.join(", ") }
}

/// Left-aligned columns three spaces apart, as kubectl prints them; no trailing spaces.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|row| row.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status() -> Value {
        json!({
            "revisions": [
                {"name": "model-v1", "managed": true, "desired": 3, "ready": 2, "starting": 1, "draining": 0,
                 "inFlight": 7, "queued": 12, "rps": 41.26,
                 "lastDecision": {"reason": "panic: 40.0 over 10.0 target", "inPanic": true}},
                {"name": "external", "managed": false, "desired": 1, "ready": 1, "starting": 0, "draining": 0,
                 "inFlight": 0, "queued": 0, "rps": 0.0, "lastDecision": null},
            ],
            "routes": [
                {"name": "main", "hosts": ["api.example.com", "models.local"], "pathPrefix": "/v1/models/m",
                 "traffic": [{"revisionName": "model-v1", "percent": 90},
                             {"revisionName": "model-v2", "percent": 10, "tag": "canary"}]},
                {"name": "ext", "hosts": [], "pathPrefix": null,
                 "traffic": [{"revisionName": "external", "percent": 100}]},
            ],
        })
    }

    #[test]
    fn renders_kubectl_style_tables() {
        let expected = "\
NAME       DESIRED   READY   STARTING   DRAINING   IN-FLIGHT   QUEUED   RPS    LAST DECISION
model-v1   3         2       1          0          7           12       41.3   panic: 40.0 over 10.0 target [panic]
external   1         1       0          0          0           0        0.0    -

NAME   HOSTS                          PATH           TRAFFIC
main   api.example.com,models.local   /v1/models/m   model-v1=90%, model-v2=10% (tag canary)
ext    *                              /              external=100%
";
        assert_eq!(render(&status()), expected);
    }

    #[test]
    fn engine_replicas_get_a_table_of_their_signals() {
        let status = json!({
            "revisions": [
                {"name": "llm", "replicas": [
                    {"address": "127.0.0.1:8001", "inFlight": 3,
                     "engine": {"reported": true, "stale": false, "waiting": 2, "running": 7, "kvCacheUse": 0.8125}},
                    {"address": "127.0.0.1:8002", "inFlight": 0,
                     "engine": {"reported": false, "stale": false, "waiting": null, "running": null,
                                "kvCacheUse": null}},
                ]},
                {"name": "plain", "replicas": [{"address": "127.0.0.1:9001", "inFlight": 1}]},
            ],
            "routes": [],
        });
        let rendered = render(&status);
        let engine_table: Vec<&str> = rendered.lines().skip_while(|line| !line.starts_with("REVISION")).collect();
        assert_eq!(
            engine_table,
            [
                "REVISION   REPLICA          IN-FLIGHT   WAITING   RUNNING   KV-CACHE   STALE",
                "llm        127.0.0.1:8001   3           2         7         81%        no",
                "llm        127.0.0.1:8002   0           -         -         -          no",
            ]
        );
        // Without scraped engines there is no such table.
        assert!(!render(&json!({"revisions": [{"name": "plain", "replicas": []}]})).contains("REVISION"));
    }

    #[test]
    fn missing_fields_show_as_dashes_not_zeros() {
        let rendered = render(&json!({"revisions": [{"name": "old"}], "routes": [{"name": "r"}]}));
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["old", "-", "-", "-", "-", "-", "-", "-", "-"]);
        assert_eq!(lines[4].split_whitespace().collect::<Vec<_>>(), ["r", "*", "/", "-"]);
    }

    #[test]
    fn an_empty_status_is_just_the_headers() {
        let rendered = render(&json!({}));
        assert_eq!(rendered.lines().filter(|line| line.starts_with("NAME")).count(), 2, "{rendered}");
        assert_eq!(rendered.lines().count(), 3, "{rendered}");
    }

    #[test]
    fn the_admin_address_comes_from_the_config() {
        let addr = admin_from_yaml("gateway: {listen: \"127.0.0.1:8080\"}\nadmin: {listen: \"127.0.0.1:9191\"}\n");
        assert_eq!(addr, Ok("127.0.0.1:9191".parse().unwrap()));
        // A wildcard listener is reached on loopback.
        assert_eq!(admin_from_yaml("admin:\n  listen: \"0.0.0.0:9191\"\n"), Ok("127.0.0.1:9191".parse().unwrap()));
        // No admin section: the default the server would use.
        let default = reachable(swell_api::config::AdminConfig::default().listen);
        assert_eq!(admin_from_yaml("revisions: []\n"), Ok(default));
        // The rest of the file is not read, so a half-edited revision does not matter.
        assert_eq!(
            admin_from_yaml("admin: {listen: \"127.0.0.1:9191\"}\nrevisions: [{name: 7, bogus: true}]\n"),
            Ok("127.0.0.1:9191".parse().unwrap())
        );
    }

    #[test]
    fn a_bad_admin_address_names_the_key_the_value_and_the_form() {
        let error = admin_from_yaml("admin: {listen: \"localhost:notaport\"}\n").unwrap_err();
        assert!(error.starts_with("admin.listen: localhost:notaport is not an address; allowed: IP:PORT"), "{error}");
        let error = admin_from_yaml("admin: [").unwrap_err();
        assert!(error.contains("not YAML") && error.contains("--admin"), "{error}");
        let error = parse_admin("nowhere").unwrap_err().to_string();
        assert_eq!(error, "--admin: \"nowhere\" is not an address; allowed: HOST:PORT, e.g. 127.0.0.1:9090");
        assert_eq!(parse_admin("http://127.0.0.1:9090/").unwrap(), "127.0.0.1:9090".parse().unwrap());
    }

    #[test]
    fn an_unreadable_config_says_which_file_and_what_to_do() {
        let error = admin_from_config(Path::new("no/such/swell-config.yaml")).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.starts_with("cannot read no/such/swell-config.yaml for admin.listen"), "{message}");
        assert!(message.contains("--admin ADDR"), "{message}");
    }

    #[test]
    fn a_response_other_than_200_is_an_error_with_its_status() {
        assert_eq!(body_of("HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{}").unwrap(), "{}");
        let error = body_of("HTTP/1.0 404 Not Found\r\n\r\nunknown admin endpoint\n").unwrap_err();
        assert_eq!(error.to_string(), "HTTP 404: unknown admin endpoint");
        assert!(body_of("HTTP/1.0 200 OK\r\n").is_err());
    }
}
