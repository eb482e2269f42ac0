//! `swell simulate`: replays recorded load through the real decider in virtual time, so an operator can try
//! autoscaler settings on recorded traffic before rolling them out. With `--stats`, input is JSON lines
//! `{"t": <s>, "concurrency": <x>, "rps": <y>}` with an optional `"ready": <n>`; output is one JSON line per
//! tick `{"t", "desired", "ready", "stable", "panic", "mode", "reason"}` on stdout. With `--trace`, a request
//! trace is replayed through a platform model under several policies and a report comes out (`simulate/trace.rs`).
//! This file only reads, parses and prints; the replays themselves are `swell_autoscaler::load_replay` and
//! `swell_sim`.

mod trace;
mod tradeoff;

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use swell_api::settings::{AutoscalerSettings, RevisionSettings};
use swell_api::{LocalConfig, ScalingSpec};
use swell_autoscaler::load_replay::{Observation, Tick, replay};

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// JSON lines of per-second load: {"t": <s>, "concurrency": <x>, "rps": <y>, "ready": <n>}; "-" reads stdin.
    #[arg(long, value_name = "FILE", required_unless_present = "trace", conflicts_with = "trace")]
    pub stats: Option<PathBuf>,
    #[command(flatten)]
    pub replay: Box<trace::TraceArgs>,
    /// A local config file: its `autoscaler:` section and a revision's `scaling` apply (default: Knative's
    /// defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The revision of `--config` whose `scaling` and `containerConcurrency` apply (default: the first).
    #[arg(long, value_name = "NAME", requires = "config")]
    pub revision: Option<String>,
    /// Without `ready` in the stats, how long a new replica takes to turn ready (Go duration, e.g. "30s").
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub start_delay: Duration,
}

pub fn run(args: &SimulateArgs) -> Result<()> {
    let Some(stats) = &args.stats else {
        return trace::run(&args.replay);
    };
    let settings = match &args.config {
        Some(path) => {
            let config = LocalConfig::load(path).with_context(|| format!("loading {}", path.display()))?;
            settings_for(&config, args.revision.as_deref())?
        }
        None => RevisionSettings::default(),
    };
    let text = read_stats(stats)?;
    let observations = parse_stats(&text).with_context(|| format!("reading {}", stats.display()))?;
    let ticks = replay(&observations, &settings, args.start_delay);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for tick in &ticks {
        serde_json::to_writer(&mut out, &TickLine::from(tick))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// The effective settings of `revision` (or the first revision) of a config, or the `autoscaler:` section
/// alone when the config has no revisions.
pub fn settings_for(config: &LocalConfig, revision: Option<&str>) -> Result<RevisionSettings> {
    let autoscaler = AutoscalerSettings::from_map(&config.autoscaler).context("autoscaler")?;
    let spec = match revision {
        Some(name) => match config.revision(name) {
            Some(rev) => Some(&rev.spec),
            None => bail!("no revision named {name:?} in the config"),
        },
        None => config.revisions.first().map(|rev| &rev.spec),
    };
    let settings = match spec {
        Some(spec) => autoscaler.for_revision(spec),
        None => autoscaler.for_scaling(&ScalingSpec::default(), 0),
    };
    Ok(settings?)
}

fn read_stats(path: &Path) -> Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(text)
}

/// One input line. Missing numbers are 0; other fields (e.g. a recorder's own) are ignored.
#[derive(Debug, Deserialize)]
struct StatLine {
    t: f64,
    #[serde(default)]
    concurrency: f64,
    #[serde(default)]
    rps: f64,
    #[serde(default)]
    ready: Option<u32>,
}

/// Parse JSON lines; blank lines are skipped and errors name the line.
pub fn parse_stats(text: &str) -> Result<Vec<Observation>> {
    let mut observations = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let stat: StatLine = serde_json::from_str(line).with_context(|| format!("line {}", index + 1))?;
        if !(stat.t.is_finite() && stat.t >= 0.0) {
            bail!("line {}: \"t\" must be a number of seconds, 0 or more", index + 1);
        }
        let (concurrency, rps, ready) = (stat.concurrency, stat.rps, stat.ready);
        observations.push(Observation { t: stat.t, concurrency, rps, ready });
    }
    Ok(observations)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    swell_api::duration::parse(text).map_err(|e| format!("{text:?}: {e}"))
}

/// One output line.
#[derive(Debug, Serialize)]
struct TickLine {
    t: u64,
    desired: u32,
    ready: u32,
    stable: f64,
    panic: f64,
    mode: &'static str,
    reason: String,
}

impl From<&Tick> for TickLine {
    fn from(tick: &Tick) -> Self {
        Self {
            t: tick.t,
            desired: tick.desired,
            ready: tick.ready,
            stable: tick.stable,
            panic: tick.panic,
            mode: if tick.in_panic { "panic" } else { "stable" },
            reason: tick.reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_lines_and_names_bad_ones() {
        let text =
            "{\"t\": 0, \"concurrency\": 10, \"rps\": 5}\n\n{\"t\": 1.5, \"concurrency\": 2, \"ready\": 3, \"x\": 1}\n";
        let parsed = parse_stats(text).expect("valid");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1], Observation { t: 1.5, concurrency: 2.0, rps: 0.0, ready: Some(3) });
        let err = parse_stats("{\"t\": 0}\n{\"t\": \"soon\"}").expect_err("bad t");
        assert!(format!("{err:#}").starts_with("line 2: "), "{err:#}");
        assert!(parse_stats("{\"t\": -1}").is_err());
    }

    #[test]
    fn prints_one_json_line_per_tick() {
        let load: Vec<Observation> =
            (0..3).map(|t| Observation { t: f64::from(t), concurrency: 350.0, rps: 0.0, ready: Some(2) }).collect();
        let ticks = replay(&load, &RevisionSettings::default(), Duration::ZERO);
        let line = serde_json::to_string(&TickLine::from(&ticks[2])).expect("serializable");
        assert_eq!(
            line,
            r#"{"t":2,"desired":5,"ready":2,"stable":350.0,"panic":350.0,"mode":"panic","reason":"panic: ceil(350/70)=5 >= 2.0 x 2 ready"}"#
        );
    }

    #[test]
    fn settings_come_from_the_named_revision() {
        let config = LocalConfig::parse(
            "autoscaler:\n  stable-window: 30s\nrevisions:\n  - name: a\n    endpoints: [\"127.0.0.1:1\"]\n  - name: b\n    endpoints: [\"127.0.0.1:2\"]\n    scaling: {target: 10}\n",
        )
        .expect("valid config");
        let first = settings_for(&config, None).expect("valid");
        assert_eq!((first.stable_window, first.target), (Duration::from_secs(30), 70.0));
        assert_eq!(settings_for(&config, Some("b")).map(|s| s.target).ok(), Some(7.0));
        assert!(settings_for(&config, Some("c")).is_err());
    }
}
