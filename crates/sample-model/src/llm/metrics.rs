//! `/metrics` in Prometheus text format under vLLM's names (`vllm:*`), each series labelled `model_name` and
//! `engine="0"` as vLLM labels them, so a gateway that reads a real vLLM reads this server the same way.
//! Written by hand: a dozen series do not need a registry, and the sample model keeps its dependencies small.

use std::fmt::Write;
use std::time::Duration;

use swell_engine::Engine;

/// vLLM's `time_to_first_token_seconds` bucket bounds.
const TTFT_BUCKETS: [f64; 22] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
    160.0, 640.0, 2560.0,
];

/// Counters the engine itself does not keep.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) prompt_tokens: u64,
    pub(crate) generation_tokens: u64,
    /// Per bucket of [`TTFT_BUCKETS`], not cumulative.
    ttft_buckets: [u64; TTFT_BUCKETS.len()],
    ttft_count: u64,
    ttft_sum: f64,
}

impl Counters {
    /// A request's first token: its time to first token as the client sees it (real time since submit), and its
    /// prompt, counted as processed.
    pub(crate) fn observe_first_token(&mut self, ttft: Duration, prompt_tokens: u32) {
        let seconds = ttft.as_secs_f64();
        if let Some(bucket) = TTFT_BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.ttft_buckets[bucket] += 1;
        }
        self.ttft_count += 1;
        self.ttft_sum += seconds;
        self.prompt_tokens += u64::from(prompt_tokens);
    }
}

/// Escapes a label value (backslash, quote, newline), as the text format requires.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

pub(crate) fn render(model_name: &str, engine: &Engine, counters: &Counters) -> String {
    let labels = format!("engine=\"0\",model_name=\"{}\"", escape(model_name));
    let mut out = String::with_capacity(4096);
    // `write!` to a String cannot fail.
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{labels}}} {value}\n");
    };
    metric(
        "vllm:num_requests_running",
        "gauge",
        "Number of requests in model execution batches.",
        engine.running().to_string(),
    );
    metric(
        "vllm:num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        engine.waiting().to_string(),
    );
    metric(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "KV-cache usage. 1 means 100 percent usage.",
        engine.kv_cache_usage().to_string(),
    );
    metric(
        "vllm:prefix_cache_queries_total",
        "counter",
        "Prefix cache queries, in terms of number of queried tokens.",
        engine.prefix_cache_queries().to_string(),
    );
    metric(
        "vllm:prefix_cache_hits_total",
        "counter",
        "Prefix cache hits, in terms of number of cached tokens.",
        engine.prefix_cache_hits().to_string(),
    );
    metric(
        "vllm:prompt_tokens_total",
        "counter",
        "Number of prefill tokens processed.",
        counters.prompt_tokens.to_string(),
    );
    metric(
        "vllm:generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        counters.generation_tokens.to_string(),
    );
    metric(
        "vllm:num_preemptions_total",
        "counter",
        "Cumulative number of preemption from the engine.",
        engine.preemptions().to_string(),
    );
    let _ = write!(
        out,
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n\
         # TYPE vllm:cache_config_info gauge\n\
         vllm:cache_config_info{{block_size=\"{}\",{labels},num_gpu_blocks=\"{}\"}} 1\n",
        engine.block_size(),
        engine.num_gpu_blocks()
    );
    let name = "vllm:time_to_first_token_seconds";
    let _ = write!(out, "# HELP {name} Histogram of time to first token in seconds.\n# TYPE {name} histogram\n");
    let mut cumulative = 0;
    for (bound, count) in TTFT_BUCKETS.iter().zip(counters.ttft_buckets) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound:?}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", counters.ttft_count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", counters.ttft_sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", counters.ttft_count);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_labels_are_escaped() {
        let engine = Engine::new(swell_engine::EngineConfig::default()).unwrap();
        let mut counters = Counters::default();
        counters.observe_first_token(Duration::from_millis(30), 10);
        counters.observe_first_token(Duration::from_millis(300), 5);
        counters.observe_first_token(Duration::from_secs(5000), 1);
        let text = render("a\"b", &engine, &counters);
        let labels = r#"engine="0",model_name="a\"b""#;
        for line in [
            format!(r#"vllm:time_to_first_token_seconds_bucket{{{labels},le="0.02"}} 0"#),
            format!(r#"vllm:time_to_first_token_seconds_bucket{{{labels},le="0.04"}} 1"#),
            format!(r#"vllm:time_to_first_token_seconds_bucket{{{labels},le="0.5"}} 2"#),
            format!(r#"vllm:time_to_first_token_seconds_bucket{{{labels},le="2560.0"}} 2"#),
            format!(r#"vllm:time_to_first_token_seconds_bucket{{{labels},le="+Inf"}} 3"#),
            format!(r#"vllm:time_to_first_token_seconds_count{{{labels}}} 3"#),
            format!(r#"vllm:prompt_tokens_total{{{labels}}} 16"#),
            format!(r#"vllm:cache_config_info{{block_size="16",{labels},num_gpu_blocks="28125"}} 1"#),
            format!(r#"vllm:kv_cache_usage_perc{{{labels}}} 0"#),
        ] {
            assert!(text.lines().any(|got| got == line), "missing {line:?} in\n{text}");
        }
    }
}
