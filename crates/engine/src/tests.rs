//! The model's behaviours, each against a hand-computed expectation where one is cheap.

use std::time::Duration;

use super::*;

fn words(count: usize, prefix: &str) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

fn request(engine: &Engine, id: RequestId, prompt: &[String], max_tokens: u32) -> Request {
    Request {
        id,
        prompt_tokens: prompt.len() as u32,
        block_hashes: block_hashes(prompt, engine.block_size() as usize),
        max_tokens,
    }
}

/// Steps back to back from `now` until idle, as a discrete-event loop would.
fn run_to_idle(engine: &mut Engine, mut now: Duration) -> Vec<Step> {
    let mut steps = Vec::new();
    while let Some(step) = engine.step(now) {
        now = step.end;
        steps.push(step);
        assert!(steps.len() < 100_000, "the engine never went idle");
    }
    steps
}

/// When request `id` got its first token, and when it finished.
fn times_of(steps: &[Step], id: RequestId) -> (Duration, Duration) {
    let at = |wanted: &dyn Fn(&Event) -> bool| {
        steps.iter().find(|step| step.events.iter().any(wanted)).map(|step| step.end).expect("event not found")
    };
    (
        at(&|event| matches!(event, Event::Token { id: got, index: 0 } if *got == id)),
        at(&|event| matches!(event, Event::Finished { id: got, .. } if *got == id)),
    )
}

#[test]
fn decode_time_grows_with_batch_size() {
    let decode_step = |batch: u64| {
        let mut engine = Engine::new(EngineConfig::default()).unwrap();
        for id in 0..batch {
            engine.submit(Duration::ZERO, request(&engine, id, &words(16, &format!("r{id}-")), 4)).unwrap();
        }
        let steps = run_to_idle(&mut engine, Duration::ZERO);
        // Step 0 prefills every prompt together and samples each first token; the rest are pure decodes.
        assert_eq!(steps[0].prefill_tokens, 16 * batch);
        assert_eq!(steps.len(), 4);
        let decode = &steps[1];
        assert_eq!((decode.prefill_tokens, u64::from(decode.decode_seqs)), (0, batch));
        decode.duration()
    };
    let config = EngineConfig::default();
    assert_eq!(decode_step(1), config.step_base + config.step_per_decode_seq);
    assert_eq!(decode_step(64), config.step_base + config.step_per_decode_seq * 64);
    assert!(decode_step(64) > decode_step(8));
}

#[test]
fn a_shared_prefix_is_prefilled_once() {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    let first = words(1000, "w");
    let mut second = first[..960].to_vec();
    second.extend(words(40, "other"));

    engine.submit(Duration::ZERO, request(&engine, 1, &first, 2)).unwrap();
    let steps = run_to_idle(&mut engine, Duration::ZERO);
    let (first_token, done) = times_of(&steps, 1);
    assert_eq!(steps[0].prefill_tokens, 1000);
    assert_eq!((engine.prefix_cache_queries(), engine.prefix_cache_hits()), (1000, 0));
    assert_eq!(engine.kv_cache_usage(), 0.0, "finished sequences hold no blocks");

    engine.submit(done, request(&engine, 2, &second, 2)).unwrap();
    let steps = run_to_idle(&mut engine, done);
    let (second_token, _) = times_of(&steps, 2);
    // 960 tokens = 60 whole blocks hit; only the 40-token tail is prefilled.
    assert_eq!(steps[0].prefill_tokens, 40);
    assert_eq!((engine.prefix_cache_queries(), engine.prefix_cache_hits()), (2000, 960));
    assert!(second_token - done < first_token, "TTFT {:?} vs {:?}", second_token - done, first_token);
    let finished = steps.iter().flat_map(|step| &step.events).find(|event| matches!(event, Event::Finished { .. }));
    assert_eq!(
        finished,
        Some(&Event::Finished { id: 2, prompt_tokens: 1000, completion_tokens: 2, cached_tokens: 960 })
    );
}

#[test]
fn a_fully_cached_prompt_still_computes_its_last_block() {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    let prompt = words(64, "w");
    engine.submit(Duration::ZERO, request(&engine, 1, &prompt, 1)).unwrap();
    let end = run_to_idle(&mut engine, Duration::ZERO).last().unwrap().end;
    engine.submit(end, request(&engine, 2, &prompt, 1)).unwrap();
    let steps = run_to_idle(&mut engine, end);
    assert_eq!(steps[0].prefill_tokens, 16);
    assert_eq!(engine.prefix_cache_hits(), 48);
}

#[test]
fn a_full_kv_cache_makes_requests_wait_until_others_finish() {
    // Four blocks of 16 tokens: one 40-token prompt (3 blocks, growing to 4) leaves too little for another.
    let config = EngineConfig { kv_capacity_tokens: 64, max_model_len: 64, ..EngineConfig::default() };
    let mut engine = Engine::new(config).unwrap();
    engine.submit(Duration::ZERO, request(&engine, 1, &words(40, "a"), 10)).unwrap();
    engine.submit(Duration::ZERO, request(&engine, 2, &words(40, "b"), 10)).unwrap();
    let first = engine.step(Duration::ZERO).unwrap();
    assert_eq!(first.prefill_tokens, 40);
    assert_eq!((engine.running(), engine.waiting()), (1, 1));
    assert_eq!(engine.kv_cache_usage(), 0.75);

    let mut steps = vec![first];
    steps.extend(run_to_idle(&mut engine, steps[0].end));
    let (_, first_done) = times_of(&steps, 1);
    let (second_token, _) = times_of(&steps, 2);
    assert!(second_token > first_done, "request 2 ran only after request 1 freed its blocks");
    assert_eq!(engine.preemptions(), 0);
    assert_eq!((engine.running(), engine.waiting(), engine.kv_cache_usage()), (0, 0, 0.0));
}

#[test]
fn max_num_seqs_bounds_the_batch() {
    let config = EngineConfig { max_num_seqs: 2, ..EngineConfig::default() };
    let mut engine = Engine::new(config).unwrap();
    for id in 0..3 {
        engine.submit(Duration::ZERO, request(&engine, id, &words(8, "p"), 3)).unwrap();
    }
    engine.step(Duration::ZERO).unwrap();
    assert_eq!((engine.running(), engine.waiting()), (2, 1));
}

#[test]
fn chunked_prefill_splits_a_long_prompt_over_steps() {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    engine.submit(Duration::ZERO, request(&engine, 7, &words(20_000, "w"), 1)).unwrap();
    let steps = run_to_idle(&mut engine, Duration::ZERO);
    let chunks: Vec<u64> = steps.iter().map(|step| step.prefill_tokens).collect();
    assert_eq!(chunks, [8192, 8192, 3616]);
    assert!(steps[..2].iter().all(|step| step.events.is_empty()), "no token before the prompt is done");
    let config = engine.config().clone();
    assert_eq!(steps[2].end, config.step_base * 3 + config.prefill_time(8192) * 2 + config.prefill_time(3616));
}

#[test]
fn decodes_share_the_budget_with_a_prefill_chunk() {
    let config = EngineConfig { max_num_batched_tokens: 100, ..EngineConfig::default() };
    let mut engine = Engine::new(config).unwrap();
    engine.submit(Duration::ZERO, request(&engine, 1, &words(10, "a"), 5)).unwrap();
    let first = engine.step(Duration::ZERO).unwrap();
    engine.submit(first.end, request(&engine, 2, &words(500, "b"), 1)).unwrap();
    // Request 1 decodes one token; request 2 gets the other 99 of the budget.
    let step = engine.step(first.end).unwrap();
    assert_eq!((step.decode_seqs, step.prefill_tokens), (1, 99));
}

#[test]
fn kv_pressure_preempts_the_newest_and_it_recomputes() {
    // Six blocks; each sequence grows from 2 blocks (a 32-token prompt) to 4 (32 + 32 tokens): three cannot
    // all grow.
    let config = EngineConfig { kv_capacity_tokens: 96, max_model_len: 96, ..EngineConfig::default() };
    let mut engine = Engine::new(config).unwrap();
    for id in 0..3 {
        engine.submit(Duration::ZERO, request(&engine, id, &words(32, &format!("s{id}-")), 33)).unwrap();
    }
    let steps = run_to_idle(&mut engine, Duration::ZERO);
    assert!(engine.preemptions() > 0);
    for id in 0..3 {
        let indices: Vec<u32> = steps
            .iter()
            .flat_map(|step| &step.events)
            .filter_map(|event| match event {
                Event::Token { id: got, index } if *got == id => Some(*index),
                _ => None,
            })
            .collect();
        assert_eq!(indices, (0..33).collect::<Vec<_>>(), "request {id} delivered every token once, in order");
    }
    assert_eq!(engine.kv_cache_usage(), 0.0);
}

#[test]
fn abort_frees_blocks_and_leaves_the_queue() {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    engine.submit(Duration::ZERO, request(&engine, 1, &words(100, "a"), 100)).unwrap();
    engine.submit(Duration::ZERO, request(&engine, 2, &words(100, "b"), 100)).unwrap();
    engine.step(Duration::ZERO).unwrap();
    assert!(engine.kv_cache_usage() > 0.0);
    assert!(engine.abort(1) && engine.abort(2));
    assert!(!engine.abort(2));
    assert_eq!((engine.running(), engine.waiting(), engine.kv_cache_usage()), (0, 0, 0.0));
    assert!(!engine.has_work());
    assert_eq!(engine.step(Duration::from_secs(1)), None);
}

#[test]
fn steps_never_overlap_and_idle_is_reported() {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    assert_eq!(engine.next_step_at(Duration::ZERO), None);
    engine.submit(Duration::ZERO, request(&engine, 1, &words(16, "a"), 3)).unwrap();
    assert_eq!(engine.next_step_at(Duration::from_millis(5)), Some(Duration::from_millis(5)));
    let first = engine.step(Duration::from_millis(5)).unwrap();
    assert_eq!(engine.next_step_at(first.start), Some(first.end));
    // Asked to start early, the next step starts when the previous one ends.
    let second = engine.step(first.start).unwrap();
    assert_eq!(second.start, first.end);
}

#[test]
fn submit_refuses_bad_requests() {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    let ok = request(&engine, 1, &words(32, "a"), 1);
    engine.submit(Duration::ZERO, ok.clone()).unwrap();
    assert_eq!(engine.submit(Duration::ZERO, ok.clone()), Err(SubmitError::DuplicateId(1)));
    let bad = |change: &dyn Fn(&mut Request)| {
        let mut request = Request { id: 9, ..ok.clone() };
        change(&mut request);
        Engine::new(EngineConfig::default()).unwrap().submit(Duration::ZERO, request).unwrap_err().to_string()
    };
    assert_eq!(bad(&|r| r.max_tokens = 0), "max_tokens = 0: a request must generate at least one token");
    assert_eq!(
        bad(&|r| r.max_tokens = 131_072),
        "prompt_tokens 32 + max_tokens 131072 = 131104 is more than max_model_len 131072"
    );
    assert_eq!(
        bad(&|r| r.block_hashes.push(0)),
        "3 block hashes for 32 prompt tokens: at most one per whole block of 16"
    );
    assert_eq!(
        bad(&|r| {
            r.prompt_tokens = 0;
            r.block_hashes.clear();
        }),
        "prompt_tokens = 0: a prompt needs at least one token"
    );
}

#[test]
fn the_same_inputs_give_the_same_steps() {
    let run = || {
        let config = EngineConfig { kv_capacity_tokens: 4096, max_model_len: 2048, ..EngineConfig::default() };
        let mut engine = Engine::new(config).unwrap();
        // A fixed pseudo-random workload (an LCG), with shared prefixes so the cache and preemption both act.
        let mut state = 12_345u64;
        let mut next = |bound: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        let mut steps = Vec::new();
        let mut now = Duration::ZERO;
        for id in 0..60 {
            let shared = words(next(512) as usize, &format!("doc{}-", next(3)));
            let mut prompt = shared;
            prompt.extend(words(1 + next(300) as usize, &format!("q{id}-")));
            engine.submit(now, request(&engine, id, &prompt, 1 + next(200) as u32)).unwrap();
            for _ in 0..next(4) {
                if let Some(step) = engine.step(now) {
                    now = step.end;
                    steps.push(step);
                }
            }
        }
        steps.extend(run_to_idle(&mut engine, now));
        (steps, engine.prefix_cache_hits(), engine.preemptions())
    };
    let (steps, hits, preemptions) = run();
    assert!(hits > 0 && preemptions > 0, "hits {hits}, preemptions {preemptions}");
    let finished = steps.iter().flat_map(|step| &step.events).filter(|e| matches!(e, Event::Finished { .. })).count();
    assert_eq!(finished, 60);
    assert_eq!(run(), (steps, hits, preemptions));
}
