"""Replay a Mooncake-format trace (JSONL: `timestamp` ms, `input_length`, `output_length`, `hash_ids`, each id a
block of 512 prompt tokens) through `swell serve` in front of sample LLM engines, once per load-balancing
policy, and print a table of time to first token, output throughput and errors.

Prompts are built deterministically from the block ids: block `b` is 512 words `b<b>w<i>` (the sample engine
counts whitespace-separated words as tokens), so requests that share leading ids share a prompt prefix, as
they share a KV prefix in the original trace. Prompts are cut to `input_length` words, and to the engine's
context length minus the output.

Time: the engines run `--time-scale K` (every modelled duration divided by K) and the arrivals are compressed
by the same K times `STRETCH` (STRETCH < 1 raises the load), so every figure printed is in the engine's own
time (wall time x K), comparable with the unscaled engine. Settings come from the environment:

  TRACE        the JSONL trace (default: the Mooncake synthetic trace under ../shared/traces)
  POLICIES     space-separated loadBalancing values (default: "engine least-request round-robin")
  REPLICAS     sample engines (default 4), all started before the replay (minScale = maxScale)
  TIME_SCALE   K (default 20)
  STRETCH      arrival-time multiplier (default 1.0)
  SKIP         start at this row (default 0): prefix sharing grows along the Mooncake trace
  LIMIT        replay at most LIMIT requests from there (default 600)
  MAX_SECONDS  wall-time bound of one policy's replay (default 300)
  SWELL_BIN, MODEL_BIN   the binaries (default target/release/...)
  BASE_PORT    first of the ports used (default 18300)
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

MODEL = "bench-llm"
BLOCK_TOKENS = 512
MAX_MODEL_LEN = 131072


def env(name, default, kind=str):
    return kind(os.environ.get(name, default))


def block_words(block):
    return [f"b{block}w{i}" for i in range(BLOCK_TOKENS)]


def prompt_of(row):
    budget = min(row["input_length"], MAX_MODEL_LEN - max(row["output_length"], 1) - 1)
    words = []
    for block in row["hash_ids"]:
        if len(words) >= budget:
            break
        words.extend(block_words(block))
    return " ".join(words[:budget])


def config(policy, replicas, time_scale, ports, model_bin):
    gateway, admin = ports
    command = [model_bin, "--engine", "llm", "--served-model-name", MODEL, "--port", "{port}",
               "--time-scale", str(time_scale)]
    return f"""
gateway: {{listen: "127.0.0.1:{gateway}", maxQueuedRequests: 100000}}
admin: {{listen: "127.0.0.1:{admin}"}}
revisions:
  - name: llm
    process: {{command: {json.dumps(command)}}}
    readinessPath: /health
    engine: {{kind: vllm, scrapeInterval: 20ms}}
    loadBalancing: {policy}
    timeoutSeconds: 3600
    scaling: {{minScale: {replicas}, maxScale: {replicas}, initialScale: {replicas}}}
routes:
  - name: llm
    pathPrefix: /v1
    models: [{MODEL}]
    traffic: [{{revisionName: llm, percent: 100}}]
"""


def wait_ready(admin, replicas, deadline):
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/v1/status", timeout=2) as response:
                status = json.load(response)
            ready = sum(r.get("ready", 0) for r in status.get("revisions", []))
            if ready >= replicas:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the {replicas} replicas did not turn ready in time")


async def one_request(port, row, prompt, results):
    body = json.dumps({"model": MODEL, "prompt": prompt, "max_tokens": max(row["output_length"], 1),
                       "stream": True}).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    start = time.monotonic()
    first = None
    tokens = 0
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + body)
        await writer.drain()
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                # Strip chunked-encoding size lines: only `data:` lines matter.
                for line in event.split(b"\n"):
                    line = line.strip()
                    if line.startswith(b"data: {") and b'"text"' in line:
                        if first is None:
                            first = time.monotonic()
                        tokens += 1
        writer.close()
        ok = status == 200 and first is not None
    except (OSError, ValueError, IndexError):
        ok = False
    results.append({"ok": ok, "ttft": (first - start) if first else None, "end": time.monotonic(),
                    "start": start, "tokens": tokens})


async def replay(port, rows, prompts, time_scale, stretch, max_seconds):
    results = []
    tasks = []
    t0 = time.monotonic()
    origin = rows[0]["timestamp"]
    for row, prompt in zip(rows, prompts):
        due = t0 + (row["timestamp"] - origin) / 1000.0 * stretch / time_scale
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() - t0 > max_seconds:
            break
        tasks.append(asyncio.create_task(one_request(port, row, prompt, results)))
    remaining = max(1.0, max_seconds - (time.monotonic() - t0))
    done, pending = await asyncio.wait(tasks, timeout=remaining) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    return results, len(pending), time.monotonic() - t0


def prefix_cache(admin):
    """Prefix-cache hits and queries (tokens) summed over the replicas' own vLLM-style metrics."""
    hits = queries = 0
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/v1/status", timeout=5) as response:
            status = json.load(response)
        addresses = [r["address"] for rev in status.get("revisions", []) for r in rev.get("replicas", [])]
        for address in addresses:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("vllm:prefix_cache_hits_total"):
                        hits += float(line.rsplit(" ", 1)[1])
                    elif line.startswith("vllm:prefix_cache_queries_total"):
                        queries += float(line.rsplit(" ", 1)[1])
    except (OSError, ValueError, KeyError):
        return float("nan")
    return hits / queries if queries else float("nan")


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def run_policy(policy, rows, prompts, settings):
    work = tempfile.mkdtemp(prefix="swell-llm-routing-")
    ports = (settings["base_port"] + 1, settings["base_port"] + 2)
    path = os.path.join(work, "swell.yaml")
    with open(path, "w") as f:
        f.write(config(policy, settings["replicas"], settings["time_scale"], ports, settings["model_bin"]))
    log = open(os.path.join(work, "swell.log"), "w")
    swell = subprocess.Popen([settings["swell_bin"], "serve", "--config", path], stdout=log, stderr=log,
                             start_new_session=True)
    try:
        wait_ready(ports[1], settings["replicas"], time.monotonic() + 60)
        results, unfinished, wall = asyncio.run(
            replay(ports[0], rows, prompts, settings["time_scale"], settings["stretch"], settings["max_seconds"]))
        hit_rate = prefix_cache(ports[1])
    finally:
        os.killpg(swell.pid, signal.SIGTERM)
        try:
            swell.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(swell.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    k = settings["time_scale"]
    ok = [r for r in results if r["ok"]]
    ttfts = [r["ttft"] * k for r in ok]
    tokens = sum(r["tokens"] for r in ok)
    span = (max(r["end"] for r in results) - min(r["start"] for r in results)) * k if results else float("nan")
    return {
        "policy": policy, "sent": len(results) + unfinished, "ok": len(ok),
        "errors": len(results) - len(ok) + unfinished,
        "ttft_p50": percentile(ttfts, 50), "ttft_p90": percentile(ttfts, 90), "ttft_p99": percentile(ttfts, 99),
        "tokens_per_s": tokens / span if span else float("nan"), "wall_s": wall, "hit_rate": hit_rate,
    }


def main():
    default_trace = os.path.join("..", "shared", "traces", "mooncake-fast25-synthetic", "synthetic_trace.jsonl")
    settings = {
        "trace": env("TRACE", default_trace),
        "policies": env("POLICIES", "engine least-request round-robin").split(),
        "replicas": env("REPLICAS", "4", int),
        "time_scale": env("TIME_SCALE", "20", float),
        "stretch": env("STRETCH", "1.0", float),
        "skip": env("SKIP", "0", int),
        "limit": env("LIMIT", "600", int),
        "max_seconds": env("MAX_SECONDS", "300", float),
        "swell_bin": env("SWELL_BIN", "target/release/swell"),
        "model_bin": os.path.abspath(env("MODEL_BIN", "target/release/swell-sample-model")),
        "base_port": env("BASE_PORT", "18300", int),
    }
    for binary in (settings["swell_bin"], settings["model_bin"]):
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary} is missing: cargo build --release")
    with open(settings["trace"]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = rows[settings["skip"] : settings["skip"] + settings["limit"]]
    prompts = [prompt_of(row) for row in rows]
    print(f"trace {settings['trace']}: {len(rows)} requests over {(rows[-1]['timestamp'] - rows[0]['timestamp']) / 1000:.0f} s; "
          f"replicas {settings['replicas']}, time scale {settings['time_scale']:g}, stretch {settings['stretch']:g}")
    print(f"{'policy':<14} {'sent':>5} {'ok':>5} {'errors':>6} {'TTFT p50 s':>10} {'p90 s':>8} {'p99 s':>8} "
          f"{'out tok/s':>9} {'prefix hit':>10} {'wall s':>7}")
    for policy in settings["policies"]:
        r = run_policy(policy, rows, prompts, settings)
        print(f"{r['policy']:<14} {r['sent']:>5} {r['ok']:>5} {r['errors']:>6} {r['ttft_p50']:>10.2f} "
              f"{r['ttft_p90']:>8.2f} {r['ttft_p99']:>8.2f} {r['tokens_per_s']:>9.0f} {r['hit_rate']:>10.1%} "
              f"{r['wall_s']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
