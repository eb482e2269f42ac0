//! Which of an engine's metrics mean "waiting", "running" and "KV-cache use", per engine kind (the table
//! of the Gateway API Inference Extension's model-server protocol, as llm-d's endpoint picker reads it),
//! and the reading of one scrape into [`EngineSignals`].
//!
//! An engine may export several series of one name (vLLM one per data-parallel `engine` label, Triton one
//! per model): request counts are summed over them, and KV-cache use, a fraction of each series' own cache,
//! is averaged, so a replica with two half-full engines reads 0.5, not 1.

use super::exposition::samples;
use swell_activator::EngineSignals;
use swell_api::EngineKind;

/// The series one signal is read from: the first of `names` that the body has, restricted to samples
/// with `label` when given.
#[derive(Debug, Clone, Copy)]
struct Selector {
    names: &'static [&'static str],
    label: Option<(&'static str, &'static str)>,
}

const fn named(name: &'static [&'static str]) -> Selector {
    Selector { names: name, label: None }
}

const fn labelled(name: &'static [&'static str], key: &'static str, value: &'static str) -> Selector {
    Selector { names: name, label: Some((key, value)) }
}

#[derive(Debug, Clone, Copy)]
struct Table {
    waiting: Selector,
    running: Selector,
    /// `None`: the engine has no KV-cache gauge (TGI), and the signal reads 0.
    kv_cache_use: Option<Selector>,
}

const VLLM: Table = Table {
    waiting: named(&["vllm:num_requests_waiting"]),
    running: named(&["vllm:num_requests_running"]),
    // vLLM renamed the gauge; releases before the rename only have the old name.
    kv_cache_use: Some(named(&["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"])),
};
const SGLANG: Table = Table {
    waiting: named(&["sglang:num_queue_reqs"]),
    running: named(&["sglang:num_running_reqs"]),
    kv_cache_use: Some(named(&["sglang:token_usage"])),
};
const TRTLLM: Table = Table {
    waiting: named(&["trtllm_num_requests_waiting"]),
    running: named(&["trtllm_num_requests_running"]),
    kv_cache_use: Some(named(&["trtllm_kv_cache_utilization"])),
};
const TRITON: Table = Table {
    waiting: labelled(&["nv_trt_llm_request_metrics"], "request_type", "waiting"),
    running: labelled(&["nv_trt_llm_request_metrics"], "request_type", "scheduled"),
    kv_cache_use: Some(labelled(&["nv_trt_llm_kv_cache_block_metrics"], "kv_cache_block_type", "fraction")),
};
const TGI: Table =
    Table { waiting: named(&["tgi_queue_size"]), running: named(&["tgi_batch_current_size"]), kv_cache_use: None };

fn table(kind: EngineKind) -> Option<&'static Table> {
    match kind {
        EngineKind::Vllm => Some(&VLLM),
        EngineKind::Sglang => Some(&SGLANG),
        EngineKind::Trtllm => Some(&TRTLLM),
        EngineKind::Triton => Some(&TRITON),
        EngineKind::Tgi => Some(&TGI),
        EngineKind::None => None,
    }
}

/// Why a body gave no signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// A signal's metric is not in the body (or the engine kind has no table).
    Missing(&'static str),
    /// A signal's value is NaN (or a sum of series that is).
    NotANumber(&'static str),
}

/// Sum and count of the samples that matched one alternative name of a selector.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    sum: f64,
    count: u32,
}

/// The most alternative names a selector lists.
const ALTERNATIVES: usize = 2;

fn tally(text: &str, selectors: [Option<Selector>; 3]) -> [[Tally; ALTERNATIVES]; 3] {
    let mut tallies = [[Tally::default(); ALTERNATIVES]; 3];
    for sample in samples(text) {
        for (selector, tallies) in selectors.iter().zip(tallies.iter_mut()) {
            let Some(selector) = selector else { continue };
            let Some(at) = selector.names.iter().position(|name| *name == sample.name) else { continue };
            if selector.label.is_none_or(|(key, value)| sample.has_label(key, value)) {
                tallies[at].sum += sample.value;
                tallies[at].count += 1;
            }
        }
    }
    tallies
}

/// The first alternative that had samples.
fn first_found(tallies: &[Tally; ALTERNATIVES], signal: &'static str) -> Result<Tally, Unreadable> {
    let found = tallies.iter().find(|tally| tally.count > 0).copied().ok_or(Unreadable::Missing(signal))?;
    if found.sum.is_nan() { Err(Unreadable::NotANumber(signal)) } else { Ok(found) }
}

/// A gauge of requests as a count: rounded, negative as 0, and anything past `u32` (a huge or infinite
/// value) saturated.
fn count(value: f64) -> u32 {
    value.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// One scrape body of an engine of `kind`, read into its signals.
pub fn signals(kind: EngineKind, text: &str) -> Result<EngineSignals, Unreadable> {
    let table = table(kind).ok_or(Unreadable::Missing("engine kind"))?;
    let [waiting, running, kv] = tally(text, [Some(table.waiting), Some(table.running), table.kv_cache_use]);
    let waiting = first_found(&waiting, "waiting")?;
    let running = first_found(&running, "running")?;
    let kv_cache_use = match table.kv_cache_use {
        Some(_) => {
            let kv = first_found(&kv, "kv cache use")?;
            (kv.sum / f64::from(kv.count)).clamp(0.0, 1.0)
        }
        None => 0.0,
    };
    Ok(EngineSignals { waiting: count(waiting.sum), running: count(running.sum), kv_cache_use })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a vLLM 0.x `/metrics`: one series per data-parallel engine, histograms around.
    const VLLM_BODY: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
vllm:num_requests_running{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 4.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 1.0
vllm:num_requests_waiting{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.25
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="m"} 0.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 12.0
"#;

    #[test]
    fn vllm_sums_requests_over_engines_and_averages_kv_use() {
        let signals = signals(EngineKind::Vllm, VLLM_BODY).unwrap();
        assert_eq!(signals, EngineSignals { waiting: 1, running: 7, kv_cache_use: 0.375 });
    }

    #[test]
    fn vllm_before_the_kv_gauge_rename() {
        let body = "vllm:num_requests_waiting 2\nvllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 0.9\n";
        assert_eq!(
            signals(EngineKind::Vllm, body).unwrap(),
            EngineSignals { waiting: 2, running: 1, kv_cache_use: 0.9 }
        );
    }

    #[test]
    fn sglang_reads_queue_running_and_token_usage() {
        let body = r#"# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="qwen"} 5.0
sglang:num_running_reqs{model_name="qwen"} 12.0
sglang:token_usage{model_name="qwen"} 0.82
sglang:cache_hit_rate{model_name="qwen"} 0.4
"#;
        assert_eq!(
            signals(EngineKind::Sglang, body).unwrap(),
            EngineSignals { waiting: 5, running: 12, kv_cache_use: 0.82 }
        );
    }

    #[test]
    fn triton_selects_series_by_label() {
        let body = r#"nv_trt_llm_request_metrics{model="ensemble",request_type="context",version="1"} 9
nv_trt_llm_request_metrics{model="ensemble",request_type="scheduled",version="1"} 6
nv_trt_llm_request_metrics{model="ensemble",request_type="max",version="1"} 64
nv_trt_llm_request_metrics{model="ensemble",request_type="waiting",version="1"} 2
nv_trt_llm_request_metrics{model="ensemble",request_type="active",version="1"} 8
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="ensemble",version="1"} 4096
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="ensemble",version="1"} 0.3
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="tokens_per",model="ensemble",version="1"} 64
"#;
        assert_eq!(
            signals(EngineKind::Triton, body).unwrap(),
            EngineSignals { waiting: 2, running: 6, kv_cache_use: 0.3 }
        );
    }

    #[test]
    fn trtllm_serve_and_tgi_whose_kv_use_is_unknown() {
        let body = "trtllm_num_requests_waiting 1\ntrtllm_num_requests_running 2\ntrtllm_kv_cache_utilization 0.7\n";
        assert_eq!(
            signals(EngineKind::Trtllm, body).unwrap(),
            EngineSignals { waiting: 1, running: 2, kv_cache_use: 0.7 }
        );
        let body = "# TYPE tgi_queue_size gauge\ntgi_queue_size 3\ntgi_batch_current_size 8\n";
        assert_eq!(
            signals(EngineKind::Tgi, body).unwrap(),
            EngineSignals { waiting: 3, running: 8, kv_cache_use: 0.0 }
        );
    }

    #[test]
    fn a_missing_signal_or_nan_makes_the_scrape_unreadable() {
        assert_eq!(
            signals(EngineKind::Vllm, "vllm:num_requests_waiting 1\nvllm:kv_cache_usage_perc 0.1\n"),
            Err(Unreadable::Missing("running"))
        );
        assert_eq!(signals(EngineKind::Vllm, ""), Err(Unreadable::Missing("waiting")));
        // The vLLM names mean nothing to an SGLang table.
        assert_eq!(signals(EngineKind::Sglang, VLLM_BODY), Err(Unreadable::Missing("waiting")));
        let nan = "vllm:num_requests_waiting NaN\nvllm:num_requests_running 1\nvllm:kv_cache_usage_perc 0.1\n";
        assert_eq!(signals(EngineKind::Vllm, nan), Err(Unreadable::NotANumber("waiting")));
        assert_eq!(signals(EngineKind::None, VLLM_BODY), Err(Unreadable::Missing("engine kind")));
    }

    #[test]
    fn huge_negative_and_out_of_range_values_are_bounded() {
        let body = "vllm:num_requests_waiting 1e300\nvllm:num_requests_running -4\nvllm:kv_cache_usage_perc 7\n";
        assert_eq!(
            signals(EngineKind::Vllm, body).unwrap(),
            EngineSignals { waiting: u32::MAX, running: 0, kv_cache_use: 1.0 }
        );
        let body = "vllm:num_requests_waiting +Inf\nvllm:num_requests_running 2.6\nvllm:kv_cache_usage_perc -Inf\n";
        assert_eq!(
            signals(EngineKind::Vllm, body).unwrap(),
            EngineSignals { waiting: u32::MAX, running: 3, kv_cache_use: 0.0 }
        );
    }

    #[test]
    fn malformed_lines_around_the_signals_are_ignored() {
        let body = "vllm:num_requests_waiting{engine=\"0\" 9\nvllm:num_requests_waiting 2\ngarbage\n\
                    vllm:num_requests_running one\nvllm:num_requests_running 1\nvllm:kv_cache_usage_perc 0.5\n";
        assert_eq!(
            signals(EngineKind::Vllm, body).unwrap(),
            EngineSignals { waiting: 2, running: 1, kv_cache_use: 0.5 }
        );
    }
}
