#!/usr/bin/env python3
"""Live check of `swell simulate`'s engine model: replay a time-compressed slice of a Mooncake-format trace against
sample LLM replicas (`swell-sample-model --engine llm`) autoscaled by a real `swell serve` on 127.0.0.1, and print
the simulator's figures for the same requests next to the measured ones.

Python 3 standard library only. Run as `benches/replay-llm [options]` after `cargo build --release`.

1. Cut rows SKIP..SKIP+LIMIT of the trace into a temporary JSONL file.
2. `swell simulate --format mooncake --time-scale K --start-time LOAD --engine-capacity C --autoscaler ...
   --policies POLICY`: the simulator compresses arrivals and the engine's times K-fold.
3. `swell serve` with one revision of sample LLM engines (`--time-scale K --load-time LOAD`), scaled from zero by
   the same Knative keys, `scaling.target` C (the simulator's capacity, so both sides aim at 0.7 C per replica),
   no containerConcurrency (the engines queue, as in the simulator). `--policy knative-kpa` (default):
   least-request routing and `credit-starting-replicas: false`, Knative's behaviour. `--policy swell`: Swell's
   defaults for an engine revision: `engine: {kind: vllm}` (the sample engine serves vLLM's metric names),
   so `engine` balancing with prefix affinity and the hold, and crediting of starting replicas.
4. An asyncio client sends every request at its compressed arrival time as a streaming completion. Prompts are
   built from the rows' block ids (block b = 512 words `b<b>w<i>`), so shared ids are shared prefixes, cut to the
   same length the simulator uses. /v1/status is sampled every 100 ms: replica-seconds = sum of (starting +
   ready) x interval. TTFT = first streamed token - send time.
5. Both sides are printed in wall (compressed) time. Every process started here is stopped on exit.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "replay-llm"
BLOCK_TOKENS = 512
MAX_MODEL_LEN = 131072
CHILDREN = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_children():
    for child in CHILDREN:
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)
                child.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def prompt_of(row):
    """The row's prompt as words, cut as the simulator cuts it: the output kept, the prompt fitted to the context."""
    output = max(row["output_length"], 1)
    budget = max(1, min(row["input_length"], MAX_MODEL_LEN - output))
    words = []
    for block in row["hash_ids"]:
        if len(words) >= budget:
            break
        words.extend(f"b{block}w{i}" for i in range(BLOCK_TOKENS))
    # Rows whose ids cover fewer tokens than input_length are padded with words of their own.
    words.extend(f"r{row['timestamp']}p{i}" for i in range(budget - len(words)))
    return " ".join(words[:budget])


def simulate(args, slice_path):
    out = os.path.join(os.path.dirname(slice_path), "sim.json")
    cmd = [args.swell_bin, "simulate", "--trace", slice_path, "--format", "mooncake", "--policies", args.policy,
           "--time-scale", str(args.time_scale), "--start-time", args.load_time, "--burst-start-time", args.load_time,
           "--engine-capacity", str(args.capacity), "--report-json", out, "--seed", "1"]
    for key, value in autoscaler(args).items():
        cmd += ["--autoscaler", f"{key}={value}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)["policies"][0]


def autoscaler(args):
    return {"stable-window": args.stable_window, "scale-to-zero-grace-period": args.grace, "initial-scale": "0",
            "allow-zero-initial-scale": "true"}


def live_keys(args):
    """What `swell serve` gets beyond the simulator's keys: Knative's behaviour turns crediting off."""
    return {"credit-starting-replicas": "false"} if args.policy == "knative-kpa" else {}


def serve_config(args, gateway, admin):
    command = [args.model_bin, "--engine", "llm", "--served-model-name", MODEL, "--port", "{port}",
               "--time-scale", str(args.time_scale), "--load-time", args.load_time]
    keys = "".join(f'\n  {k}: "{v}"' for k, v in {**autoscaler(args), **live_keys(args)}.items())
    balancing = ("loadBalancing: least-request" if args.policy == "knative-kpa"
                 else "engine: {kind: vllm}")
    return f"""# written by benches/replay-llm
gateway: {{listen: "127.0.0.1:{gateway}", maxQueuedRequests: 100000}}
admin: {{listen: "127.0.0.1:{admin}"}}
autoscaler:{keys}
revisions:
  - name: llm
    process: {{command: {json.dumps(command)}}}
    readinessPath: /health
    {balancing}
    timeoutSeconds: 3600
    scaling: {{target: {args.capacity}}}
routes:
  - name: llm
    pathPrefix: /v1
    models: [{MODEL}]
    traffic: [{{revisionName: llm, percent: 100}}]
"""


async def one(port, row, prompt, results, t0):
    body = json.dumps({"model": MODEL, "prompt": prompt, "max_tokens": max(row["output_length"], 1),
                       "stream": True}).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    start = time.monotonic()
    first = None
    cold = False
    status = 0
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + body)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            cold |= line.lower().startswith(b"swell-cold-start")
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            if first is None and b'"text"' in buffer + chunk:
                first = time.monotonic()
            buffer = chunk[-16:]
        writer.close()
    except (OSError, ValueError, IndexError):
        status = 0
    results.append({"ok": status == 200 and first is not None, "ttft": (first - start) if first else None,
                    "end": time.monotonic() - t0, "cold": cold})


async def live(args, rows, prompts, gateway, admin):
    results = []
    samples = {"replica_seconds": 0.0}
    t0 = time.monotonic()
    origin = rows[0]["timestamp"]
    done = asyncio.Event()

    async def sampler():
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.1)
            try:
                status = await asyncio.to_thread(
                    lambda: json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/v1/status", timeout=2)))
            except (OSError, ValueError):
                continue
            now = time.monotonic()
            for rev in status.get("revisions", []):
                samples["replica_seconds"] += (rev.get("starting", 0) + rev.get("ready", 0)) * (now - last)
            last = now

    sampling = asyncio.create_task(sampler())
    tasks = []
    for row, prompt in zip(rows, prompts):
        delay = t0 + (row["timestamp"] - origin) / 1000.0 / args.time_scale - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(gateway, row, prompt, results, t0)))
    await asyncio.wait(tasks, timeout=max(1.0, args.max_seconds - (time.monotonic() - t0)))
    # Keep paying until the revision scales to zero, as the simulator does until its replicas are gone.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/v1/status", timeout=2))
        if all(rev.get("starting", 0) + rev.get("ready", 0) == 0 for rev in status.get("revisions", [])):
            break
        await asyncio.sleep(0.2)
    done.set()
    await sampling
    return results, samples["replica_seconds"]


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(-(-q * len(values) // 1)) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", default=os.path.join(REPO, "..", "shared", "traces", "mooncake-fast25-synthetic",
                                                        "synthetic_trace.jsonl"))
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--limit", type=int, default=600)
    parser.add_argument("--time-scale", type=float, default=4.0)
    parser.add_argument("--load-time", default="1s")
    parser.add_argument("--capacity", type=int, default=2)
    parser.add_argument("--stable-window", default="6s")
    parser.add_argument("--grace", default="3s")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--policy", choices=["knative-kpa", "swell"], default="knative-kpa")
    parser.add_argument("--swell-bin", default=os.path.join(REPO, "target", "release", "swell"))
    parser.add_argument("--model-bin", default=os.path.join(REPO, "target", "release", "swell-sample-model"))
    args = parser.parse_args()
    for binary in (args.swell_bin, args.model_bin):
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary} is missing: cargo build --release")
    with open(args.trace) as f:
        rows = [json.loads(line) for line in f if line.strip()][args.skip : args.skip + args.limit]
    span = (rows[-1]["timestamp"] - rows[0]["timestamp"]) / 1000.0 / args.time_scale
    if span > args.max_seconds:
        sys.exit(f"the slice lasts {span:.0f} s of wall time at --time-scale {args.time_scale:g}; "
                 f"at most --max-seconds {args.max_seconds:g}")
    work = tempfile.mkdtemp(prefix="swell-replay-llm-")
    try:
        slice_path = os.path.join(work, "slice.jsonl")
        with open(slice_path, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
        sim = simulate(args, slice_path)
        gateway, admin = free_port(), free_port()
        config = os.path.join(work, "swell.yaml")
        with open(config, "w") as f:
            f.write(serve_config(args, gateway, admin))
        log = open(os.path.join(work, "swell.log"), "w")
        CHILDREN.append(subprocess.Popen([args.swell_bin, "serve", "--config", config], stdout=log, stderr=log,
                                         start_new_session=True))
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/v1/status", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or CHILDREN[-1].poll() is not None:
                    sys.exit(f"swell serve did not come up; its log: {log.name}")
                time.sleep(0.1)
        prompts = [prompt_of(row) for row in rows]
        results, replica_seconds = asyncio.run(live(args, rows, prompts, gateway, admin))
        ok = [r for r in results if r["ok"]]
        ttft = [r["ttft"] * 1000 for r in ok]
        print(f"slice: rows {args.skip}..{args.skip + len(rows)} of {os.path.relpath(args.trace)}, {len(rows)} requests, "
              f"time / {args.time_scale:g} ({span:.0f} s of wall time), start {args.load_time}, capacity "
              f"{args.capacity}, stable window {args.stable_window}, grace {args.grace}, policy {args.policy}; "
              f"all figures in wall time")
        # Cold starts as the gateway counts them (swell-cold-start: no replica ready on arrival), on both rows.
        print("| run | requests | ok | cold starts from zero | p50 TTFT ms | p99 TTFT ms | replica-s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print(f"| simulated {args.policy} | {sim['requests']} | {sim['requests']} | {sim['coldStartsFromZero']} | "
              f"{sim.get('p50TtftMs', float('nan')):.0f} | {sim.get('p99TtftMs', float('nan')):.0f} | "
              f"{sim['replicaSeconds'] + sim['burstReplicaSeconds']:.1f} |")
        print(f"| live `swell serve` | {len(results)} | {len(ok)} | {sum(r['cold'] for r in results)} | "
              f"{percentile(ttft, 0.5):.0f} | {percentile(ttft, 0.99):.0f} | {replica_seconds:.1f} |")
        print(f"\nsimulated cold starts by the simulator's wider count (the serving replica not ready on arrival, "
              f"requests held for starting replicas included): {sim['coldStarts']}")
    finally:
        stop_children()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (stop_children(), sys.exit(143)))
    main()
