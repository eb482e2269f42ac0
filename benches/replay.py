#!/usr/bin/env python3
"""Live check of `swell simulate --trace`: replay a time-compressed slice of an Azure Functions trace against a
real `swell serve` with sample-model replicas on 127.0.0.1, and print the simulator's figures for the very same
requests next to the measured ones.

Python 3 standard library only. Run from anywhere as `benches/replay [options]` after `cargo build --release`.

How it works:
1. Cut the slice (some functions, some minutes) out of the trace into a temporary trace folder.
2. `swell simulate --trace SLICE --time-scale K --autoscaler ... --start-time LOAD --requests-out R.csv`
   draws the slice's requests (arrival, service time), divides time by K, replays them under knative-kpa and
   swell, and writes the requests it replayed, so the live run sends exactly the same ones.
3. Calibrate the sample model: its --compute-time is a sleep per instance, and a tokio sleep overshoots by about
   a millisecond; the effective time per instance is measured on a standalone replica, and each request asks for
   round(service / effective) instances.
4. `swell serve` with one revision and one route per function (sample model, --load-time LOAD, containerConcurrency
   1, autoscaler keys identical to the simulator's), then an asyncio client sends each request at its arrival
   time on its own connection. /v1/status is sampled every 100 ms: replica-seconds = sum of (starting + ready) x
   interval, scale events = changes of `desired`. Added latency = response time - instances x effective instance
   time. Cold starts = responses with `swell-cold-start` (the gateway's definition: no replica ready on arrival);
   the simulator's definition (the replica that served it was not ready when it arrived) is also estimated from
   `x-model-replica` and printed alongside.
5. Print both as one Markdown table. Every process started here is stopped on exit (SIGTERM to `swell serve`,
   which stops its replicas, then SIGKILL to its process group).
"""

import argparse
import asyncio
import csv
import faulthandler
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILDREN = []  # Popen objects, each the leader of its own process group


def log(*parts):
    print("replay:", *parts, file=sys.stderr, flush=True)


def seconds(text):
    """'1s', '500ms', '2.5' -> seconds."""
    text = text.strip()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000.0
    if text.endswith("s"):
        return float(text[:-1])
    return float(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_children():
    for child in CHILDREN:
        if child.poll() is None:
            try:
                child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 12
    for child in CHILDREN:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever is left in the group (replicas of a serve that did not stop them)
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            child.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
    CHILDREN.clear()


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def spawn(argv, log_path, **kw):
    out = open(log_path, "wb")
    child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)
    CHILDREN.append(child)
    return child


# ---------------------------------------------------------------- HTTP on raw asyncio streams


async def http(host, port, method, path, body=b"", timeout=30.0):
    """One request on its own connection; returns (status, headers dict, body bytes)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        writer.write(head + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    header, _, payload = raw.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, payload


def blocking_http(port, method, path, body=b"", timeout=5.0):
    return asyncio.run(http("127.0.0.1", port, method, path, body, timeout))


def wait_http(port, path, deadline, child=None):
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            raise RuntimeError(f"process exited with {child.returncode} before {path} answered")
        try:
            if blocking_http(port, "GET", path, timeout=1.0)[0] == 200:
                return
        except (OSError, asyncio.TimeoutError, ValueError, IndexError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"127.0.0.1:{port}{path} not 200 in time")


# ---------------------------------------------------------------- the slice and the simulator


def cut_slice(trace, functions, first, minutes, out):
    os.makedirs(out)
    with open(os.path.join(trace, "invocations.csv")) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    total = len(header) - 4
    if first < 0 or first + minutes > total:
        raise SystemExit(f"--from-minute {first} --minutes {minutes}: the trace has minutes 0..{total - 1}")
    picked = []
    for prefix in functions:
        match = [r for r in body if r[2].startswith(prefix)]
        if len(match) != 1:
            raise SystemExit(f"function {prefix!r}: {len(match)} rows match in invocations.csv")
        picked.append(match[0])
    cols = slice(4 + first, 4 + first + minutes)
    with open(os.path.join(out, "invocations.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header[:4] + header[cols])
        for r in picked:
            w.writerow(r[:4] + r[cols])
    shutil.copy(os.path.join(trace, "durations.csv"), os.path.join(out, "durations.csv"))
    return [r[2][:8] for r in picked]


def simulate(args, slice_dir, work, autoscaler):
    requests_csv = os.path.join(work, "requests.csv")
    report = os.path.join(work, "sim.json")
    argv = [args.swell, "simulate", "--trace", slice_dir, "--format", "azure-functions",
            "--policies", "knative-kpa,swell", "--seed", str(args.seed), "--time-scale", str(args.time_scale),
            "--start-time", args.load_time, "--container-concurrency", "1",
            "--requests-out", requests_csv, "--report-json", report]
    for k, v in autoscaler.items():
        argv += ["--autoscaler", f"{k}={v}"]
    log(" ".join(argv))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"swell simulate failed ({done.returncode}):\n{done.stderr}")
    with open(report) as f:
        policies = json.load(f)["policies"]
    requests = []
    with open(requests_csv) as f:
        for row in csv.DictReader(f):
            requests.append((row["revision"], float(row["arrival_s"]), float(row["service_s"])))
    return policies, requests, " ".join(argv)


# ---------------------------------------------------------------- calibration


def calibrate(args, work):
    """Effective seconds per instance of the sample model's --compute-time sleep."""
    port = free_port()
    child = spawn([args.model_bin, "--model", "calib", "--port", str(port), "--load-time", "0s",
                   "--compute-time", args.compute_unit], os.path.join(work, "calibrate.log"))
    try:
        wait_http(port, "/v1/models/calib", time.monotonic() + 10, child)

        def timed(n):
            body = json.dumps({"instances": ["x"] * n}).encode()
            samples = []
            for _ in range(5):
                t = time.perf_counter()
                status, _, _ = blocking_http(port, "POST", "/v1/models/calib:predict", body)
                samples.append(time.perf_counter() - t)
                assert status == 200, status
            return statistics.median(samples)

        one, many = timed(1), timed(101)
        unit = (many - one) / 100.0
        return unit, one - unit
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=5)
        CHILDREN.remove(child)


# ---------------------------------------------------------------- the live run


def serve_config(args, names, gateway_port, admin_port, autoscaler):
    lines = [
        "# written by benches/replay",
        f'gateway: {{listen: "127.0.0.1:{gateway_port}", maxQueuedRequests: 10000}}',
        f'admin: {{listen: "127.0.0.1:{admin_port}"}}',
        "autoscaler:",
    ]
    lines += [f'  {k}: "{v}"' for k, v in autoscaler.items()]
    lines.append("revisions:")
    for name in names:
        command = [args.model_bin, "--model", name, "--load-time", args.load_time, "--compute-time", args.compute_unit]
        lines += [
            f"  - name: {name}",
            f"    process: {{command: {json.dumps(command)}}}",
            f"    readinessPath: /v1/models/{name}",
            "    containerConcurrency: 1",
            "    timeoutSeconds: 120",
        ]
    lines.append("routes:")
    for name in names:
        lines += [
            f"  - name: {name}",
            f"    pathPrefix: /v1/models/{name}",
            f"    traffic: [{{revisionName: {name}, percent: 100}}]",
        ]
    return "\n".join(lines) + "\n"


async def live(requests, gateway_port, admin_port, unit, duration, deadline_s):
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.5
    results = []
    samples = {"replica_seconds": 0.0, "scale_events": 0, "count": 0, "errors": 0}
    pending = len(requests)
    done_event = asyncio.Event()

    async def one(revision, arrival, service):
        nonlocal pending
        n = max(0, round(service / unit))
        body = json.dumps({"instances": ["x"] * n}).encode()
        await asyncio.sleep(max(0.0, t0 + arrival - loop.time()))
        sent = loop.time()
        try:
            status, headers, _ = await http("127.0.0.1", gateway_port, "POST", f"/v1/models/{revision}:predict",
                                            body, timeout=deadline_s)
        except (OSError, asyncio.TimeoutError, ValueError, IndexError) as err:
            status, headers = 0, {"error": repr(err)}
        end = loop.time()
        results.append({
            "revision": revision, "arrival": sent - t0, "late": sent - (t0 + arrival), "end": end - t0,
            "rt": end - sent, "work": n * unit, "status": status,
            "cold_ms": headers.get("swell-cold-start"), "replica": headers.get("x-model-replica"),
        })
        pending -= 1
        if pending == 0:
            done_event.set()

    async def sampler():
        last_desired = {}
        prev = loop.time()
        while True:
            try:
                _, _, payload = await http("127.0.0.1", admin_port, "GET", "/v1/status", timeout=2.0)
                status = json.loads(payload)
            except (OSError, asyncio.TimeoutError, ValueError) as err:
                samples["errors"] += 1
                log("status sample failed:", repr(err))
                status = None
            now = loop.time()
            if status is not None and now > t0:
                dt = now - max(prev, t0)
                for rev in status["revisions"]:
                    samples["replica_seconds"] += (rev["starting"] + rev["ready"]) * dt
                    desired = rev["desired"]
                    if last_desired.get(rev["name"], 0) != desired:
                        samples["scale_events"] += 1
                    last_desired[rev["name"]] = desired
                samples["count"] += 1
            prev = now
            if samples["count"] % 150 == 1:
                log(f"t = {now - t0:.0f} s: {len(results)} answered, {pending} open")
            await asyncio.sleep(max(0.0, 0.1 - (loop.time() - now)))

    tasks = [asyncio.create_task(one(*r)) for r in requests]
    sampling = asyncio.create_task(sampler())
    # Like the simulator: stop at the end of the slice, or later when the last request is answered.
    try:
        await asyncio.wait_for(done_event.wait(), timeout=t0 + duration + deadline_s - loop.time())
    except asyncio.TimeoutError:
        log(f"{pending} requests still open at the deadline; counted as failed")
    log(f"all requests done at t = {loop.time() - t0:.1f} s")
    await asyncio.sleep(max(0.0, t0 + duration - loop.time()))
    end = math.ceil(max(duration, max((r["end"] for r in results), default=0.0)))
    await asyncio.sleep(max(0.0, t0 + end - loop.time()))
    sampling.cancel()
    for t in tasks:
        t.cancel()
    await asyncio.gather(sampling, *tasks, return_exceptions=True)
    return results, samples, end


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_ms)))
    return sorted_ms[rank - 1]


def sim_definition_cold(results, lookback):
    """Requests whose replica was not ready when they arrived (the simulator's definition), estimated: a request
    that waited is cold unless its replica (x-model-replica) began serving some request at or before its
    arrival, within the last `lookback` seconds (a replica idle longer than the keep-alive is gone)."""
    starts = {}
    for r in results:
        if r["replica"]:
            starts.setdefault(r["replica"], []).append(r["end"] - r["work"])
    cold = 0
    for r in results:
        waited = r["rt"] - r["work"]
        if r["status"] != 200 or waited < 0.010:
            cold += r["status"] != 200
            continue
        began = starts.get(r["replica"], [])
        if not any(r["arrival"] - lookback <= s <= r["arrival"] + 0.002 for s in began):
            cold += 1
    return cold


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trace", default=os.path.join(REPO, "..", "shared", "traces", "azure-functions-2019-invitro-100"))
    p.add_argument("--functions", default="9570ded8,1dea6307,30a976ce,71e479d2,52dd9c59",
                   help="comma-separated HashFunction prefixes")
    p.add_argument("--from-minute", type=int, default=408, help="first trace minute of the slice (0-based)")
    p.add_argument("--minutes", type=int, default=24)
    p.add_argument("--time-scale", type=float, default=10.0, help="one trace minute lasts 60/K wall seconds")
    p.add_argument("--load-time", default="1s", help="sample model load time = the simulator's --start-time")
    p.add_argument("--stable-window", default="6s", help="60 s / K, at least Knative's 6 s")
    p.add_argument("--grace", default="3s", help="scale-to-zero-grace-period (30 s / K)")
    p.add_argument("--compute-unit", default="5ms", help="sample model --compute-time per instance")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--swell", default=os.path.join(REPO, "target", "release", "swell"))
    p.add_argument("--model-bin", default=os.path.join(REPO, "target", "release", "swell-sample-model"))
    p.add_argument("--work", help="keep the slice, configs, logs and per-request results here")
    p.add_argument("--json", help="write both sets of figures here")
    args = p.parse_args()

    for binary in (args.swell, args.model_bin):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} not found: run `cargo build --release` first")
    duration = args.minutes * 60.0 / args.time_scale
    if duration > 200:
        raise SystemExit(f"the slice would last {duration:.0f} s of wall time; keep it under 200 s")
    signal.signal(signal.SIGTERM, on_signal)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints where it is
    work = args.work or tempfile.mkdtemp(prefix="swell-replay-")
    os.makedirs(work, exist_ok=True)
    autoscaler = {
        "stable-window": args.stable_window,
        "scale-to-zero-grace-period": args.grace,
        "initial-scale": "0",
        "allow-zero-initial-scale": "true",
    }
    started = time.monotonic()
    try:
        slice_dir = os.path.join(work, "slice")
        shutil.rmtree(slice_dir, ignore_errors=True)
        hashes = cut_slice(args.trace, args.functions.split(","), args.from_minute, args.minutes, slice_dir)
        sim, requests, sim_command = simulate(args, slice_dir, work, autoscaler)
        names = {h: f"fn-{h}" for h in hashes}
        requests = [(names[rev], a, s) for rev, a, s in requests]
        log(f"{len(requests)} requests over {duration:.0f} s ({args.minutes} trace minutes / {args.time_scale:g})")

        unit, base = calibrate(args, work)
        log(f"sample model: {unit * 1000:.2f} ms per {args.compute_unit} instance, {base * 1000:.2f} ms per request")

        gateway_port, admin_port = free_port(), free_port()
        config = os.path.join(work, "serve.yaml")
        with open(config, "w") as f:
            f.write(serve_config(args, list(names.values()), gateway_port, admin_port, autoscaler))
        serve = spawn([args.swell, "serve", "--config", config], os.path.join(work, "serve.log"), cwd=REPO)
        wait_http(admin_port, "/readyz", time.monotonic() + 20, serve)
        log(f"swell serve up on 127.0.0.1:{gateway_port} (admin {admin_port}); replaying")

        # Hard bound on the replay; if it is ever exceeded, say where the client was stuck.
        faulthandler.dump_traceback_later(duration + 100, exit=False)
        results, samples, end = asyncio.run(asyncio.wait_for(
            live(requests, gateway_port, admin_port, unit, duration, 60.0), timeout=duration + 110))
        faulthandler.cancel_dump_traceback_later()
        stop_children()
    finally:
        stop_children()

    ok = [r for r in results if r["status"] == 200]
    failed = len(requests) - len(ok)
    added = sorted(max(0.0, (r["rt"] - r["work"]) * 1000.0) for r in results)
    added += [60_000.0] * (len(requests) - len(results))
    cold = sum(1 for r in results if r["cold_ms"] is not None)
    cold_sim_def = sim_definition_cold(results, seconds(args.stable_window) + seconds(args.grace))
    cold_waits = sorted(int(r["cold_ms"]) for r in results if r["cold_ms"] is not None)
    late = max((r["late"] for r in results), default=0.0)
    live_row = {
        "name": "live swell serve (KPA)", "requests": len(requests), "coldStarts": cold,
        "p50AddedMs": percentile(added, 0.50), "p99AddedMs": percentile(added, 0.99),
        "maxAddedMs": added[-1] if added else 0.0, "replicaSeconds": samples["replica_seconds"],
        "scaleEvents": samples["scale_events"],
    }
    with open(os.path.join(work, "live.json"), "w") as f:
        json.dump({"results": results, "samples": samples}, f)

    print(f"\nslice: {args.trace} functions {','.join(hashes)}, minutes {args.from_minute}.."
          f"{args.from_minute + args.minutes - 1}, time / {args.time_scale:g} ({duration:.0f} s), seed {args.seed}")
    print(f"settings: containerConcurrency 1, start {args.load_time}, "
          + ", ".join(f"{k} {v}" for k, v in autoscaler.items()))
    print(f"simulator: {sim_command}\n")
    print("| run | requests | cold starts | cold % | p50 added ms | p99 added ms | max added ms | replica-s | scale events |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in [{**r, "name": "simulated " + r["name"]} for r in sim] + [live_row]:
        pct = 100.0 * row["coldStarts"] / row["requests"] if row["requests"] else 0.0
        print(f"| {row['name']} | {row['requests']} | {row['coldStarts']} | {pct:.2f} | {row['p50AddedMs']:.0f} | "
              f"{row['p99AddedMs']:.0f} | {row['maxAddedMs']:.0f} | {row['replicaSeconds']:.1f} | {row['scaleEvents']} |")
    print(f"\nlive: {len(ok)} answered 200, {failed} failed; cold starts by the simulator's definition (replica not "
          f"ready on arrival, estimated): {cold_sim_def}; swell-cold-start waits ms min/median/max: "
          + (f"{cold_waits[0]}/{cold_waits[len(cold_waits) // 2]}/{cold_waits[-1]}" if cold_waits else "-")
          + f"; measured until t = {end} s, {samples['count']} status samples; latest send {late * 1000:.1f} ms late;"
          f" sample model {unit * 1000:.2f} ms per instance; wall {time.monotonic() - started:.0f} s; files in {work}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"simulated": sim, "live": live_row, "coldStartsSimDefinition": cold_sim_def}, f, indent=2)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as err:
        stop_children()
        log(f"interrupted ({err})")
        sys.exit(130)
