//! The engine's parameters and their defaults: one published configuration, Llama-3.1-8B (bf16) served by vLLM on
//! one H100-class (80 GB) GPU. Where each default comes from, and which are estimates, is in the crate's
//! README ("Defaults and sources").

use std::time::Duration;

/// The engine's parameters. `Default` is the Llama-3.1-8B / H100 / vLLM configuration described in the README.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Prompt tokens prefilled per second of step time (compute-bound, so linear in tokens).
    pub prefill_tokens_per_sec: u64,
    /// Fixed cost of every step: reading the weights once (memory-bound decode) plus launch overheads.
    pub step_base: Duration,
    /// Added to a step for every sequence that decodes a token in it (its KV reads and sampling).
    pub step_per_decode_seq: Duration,
    /// KV-cache capacity in tokens; `num_gpu_blocks = kv_capacity_tokens / block_size`.
    pub kv_capacity_tokens: u64,
    /// Tokens per KV block, the unit of allocation and of prefix caching (vLLM's `--block-size`).
    pub block_size: u32,
    /// Most sequences running at once (vLLM's `--max-num-seqs`).
    pub max_num_seqs: u32,
    /// Token budget of one step, prefill chunks and decodes together (vLLM's `--max-num-batched-tokens`).
    pub max_num_batched_tokens: u32,
    /// Longest prompt + completion a request may ask for (vLLM's `--max-model-len`).
    pub max_model_len: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            prefill_tokens_per_sec: 16_000,
            step_base: Duration::from_millis(10),
            step_per_decode_seq: Duration::from_micros(60),
            kv_capacity_tokens: 450_000,
            block_size: 16,
            max_num_seqs: 256,
            max_num_batched_tokens: 8192,
            max_model_len: 131_072,
        }
    }
}

/// A parameter out of range: names the key, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("engine setting {key} = {value} is invalid: {allowed}")]
pub struct ConfigError {
    /// The field of [`EngineConfig`].
    pub key: &'static str,
    /// The rejected value, as written.
    pub value: String,
    /// What would be accepted.
    pub allowed: String,
}

impl EngineConfig {
    /// Checks every field and the relations between them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key, value: &dyn std::fmt::Display, allowed: String| {
            Err(ConfigError { key, value: value.to_string(), allowed })
        };
        if self.prefill_tokens_per_sec == 0 {
            return fail("prefill_tokens_per_sec", &0, "must be at least 1".into());
        }
        if self.block_size == 0 {
            return fail("block_size", &0, "must be at least 1".into());
        }
        if self.max_num_seqs == 0 {
            return fail("max_num_seqs", &0, "must be at least 1".into());
        }
        if self.max_num_batched_tokens == 0 {
            return fail("max_num_batched_tokens", &0, "must be at least 1".into());
        }
        if self.max_model_len < 2 {
            return fail(
                "max_model_len",
                &self.max_model_len,
                "must be at least 2 (one prompt and one output token)".into(),
            );
        }
        let blocks_for_longest = u64::from(self.max_model_len).div_ceil(u64::from(self.block_size));
        if self.num_gpu_blocks() < blocks_for_longest {
            return fail(
                "kv_capacity_tokens",
                &self.kv_capacity_tokens,
                format!(
                    "must hold at least one sequence of max_model_len {} tokens ({} blocks of {})",
                    self.max_model_len, blocks_for_longest, self.block_size
                ),
            );
        }
        if u32::try_from(self.num_gpu_blocks()).is_err() {
            return fail("kv_capacity_tokens", &self.kv_capacity_tokens, format!("must be below {} blocks", u32::MAX));
        }
        Ok(())
    }

    /// Whole KV blocks that fit the capacity.
    pub fn num_gpu_blocks(&self) -> u64 {
        self.kv_capacity_tokens / u64::from(self.block_size.max(1))
    }

    /// Time to prefill `tokens` prompt tokens, in whole nanoseconds (integer arithmetic, so every platform agrees).
    pub fn prefill_time(&self, tokens: u64) -> Duration {
        let nanos = u128::from(tokens) * 1_000_000_000 / u128::from(self.prefill_tokens_per_sec.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Duration of a step that prefills `prefill_tokens` and decodes one token for each of `decode_seqs`
    /// sequences: `step_base + decode_seqs × step_per_decode_seq + prefill_tokens / prefill_tokens_per_sec`.
    pub fn step_time(&self, prefill_tokens: u64, decode_seqs: u32) -> Duration {
        self.step_base + self.step_per_decode_seq * decode_seqs + self.prefill_time(prefill_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_readme() {
        let config = EngineConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.num_gpu_blocks(), 28_125);
        // A lone decode is the base; a full batch of 256 adds 15.36 ms.
        assert_eq!(config.step_time(0, 1), Duration::from_micros(10_060));
        assert_eq!(config.step_time(0, 256), Duration::from_micros(25_360));
        // A full 8192-token chunk at 16k tokens/s.
        assert_eq!(config.step_time(8192, 0), Duration::from_micros(10_000 + 512_000));
    }

    #[test]
    fn errors_name_key_value_and_range() {
        let small = EngineConfig { kv_capacity_tokens: 1000, ..EngineConfig::default() };
        let err = small.validate().unwrap_err();
        assert_eq!(err.key, "kv_capacity_tokens");
        assert_eq!(
            err.to_string(),
            "engine setting kv_capacity_tokens = 1000 is invalid: must hold at least one sequence of max_model_len \
             131072 tokens (8192 blocks of 16)"
        );
        let zero = EngineConfig { block_size: 0, ..EngineConfig::default() };
        assert_eq!(
            zero.validate().unwrap_err().to_string(),
            "engine setting block_size = 0 is invalid: must be at least 1"
        );
    }
}
