#!/usr/bin/env python3
"""Runs duet's benchmarks and its peers' side by side and reports ratios.

    bench/run_bench.py --build-dir build/bench [--runs 5] [--smoke] [--out DIR]

Each run executes every implementation's binary once, one process at a
time, rotating which implementation goes first so that none always gets the
coolest (or warmest) machine. For every (workload, metric) it prints the
median, min and max per implementation and, per peer, the median over runs
of the per-run ratio duet/peer (for times: below 1 means duet is faster;
the "x" column is its inverse, "how many times faster"). It writes
results.json (every sample) and results.md (the table and the machine).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# (implementation, binary). An implementation may have several binaries;
# each run executes all of them once, in rotating order.
BINARIES = [("duet", "duet_loop_bench"), ("asio", "asio_loop_bench"), ("libuv", "uv_loop_bench"),
            ("duet", "duet_task_bench"), ("asio", "asio_task_bench"), ("duet", "duet_context_bench"),
            ("duet", "duet_fiber_bench")]
IMPLS = sorted({impl for impl, _ in BINARIES})

# Goals from the issues, as (workload, metric, peer, minimum speedup peer/duet).
GOALS = [
    ("call_soon_batch", "ns_per_callback", "asio", 5.0),
    ("call_soon_chain", "ns_per_callback", "asio", 1.2),
    ("timers", "schedule_ns", "libuv", 2.0),
    ("timers", "cancel_ns", "asio", 2.0),
    ("timers", "rss_bytes_per_timer", "libuv", 2.0),  # <= 0.5x libuv's memory
    ("task_spawn", "ns_per_task", "asio", 8.0),
    ("ping_pong_future", "ns_per_hop", "asio", 3.0),
]

# Goals with no peer (Asio and libuv have no context variables), as
# (workload, metric, maximum median).
ABSOLUTE_GOALS = [
    ("context_get", "ns_per_get", 5.0),
    ("context_copy", "ns_per_copy", 5.0),
    ("context_set", "ns_per_set", 50.0),
    ("context_call_soon", "overhead_percent", 10.0),
    ("lock_uncontended", "ns_per_acquire_release", 10.0),
]

# Goals between two duet workloads of the same run, as (workload, metric,
# reference workload, reference metric, maximum ratio).
RELATIVE_GOALS = [
    ("ping_pong_queue", "ns_per_hop", "ping_pong_future", "ns_per_hop", 1.5),
    ("fiber_ping_pong", "ns_per_hop", "ping_pong_future", "ns_per_hop", 2.0),
]


def machine_line(build_dir):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    compiler = "unknown compiler"
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_CXX_COMPILER:"):
                    path = line.split("=", 1)[1].strip()
                    compiler = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        pass
    return f"nproc {os.cpu_count()}, {cpu}, Linux {platform.release()}, {compiler}"


def run_once(binary, smoke):
    cmd = [binary] + (["--smoke"] if smoke else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit(f"{binary} failed with {out.returncode}:\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny N, one run: checks that everything builds and runs")
    ap.add_argument("--out", default=None, help="directory for results.json and results.md")
    args = ap.parse_args()
    runs = 1 if args.smoke else args.runs

    binaries = []
    for impl, name in BINARIES:
        path = os.path.join(args.build_dir, "bench", name)
        if not os.path.exists(path):
            sys.exit(f"missing {path}: build the 'bench' preset first")
        binaries.append((impl, path))

    samples = {}  # (workload, metric) -> impl -> [value per run]
    started = time.time()
    for r in range(runs):
        order = binaries[r % len(binaries):] + binaries[: r % len(binaries)]
        for impl, path in order:
            for rec in run_once(path, args.smoke):
                key = (rec["workload"], rec["metric"])
                samples.setdefault(key, {}).setdefault(impl, []).append(rec["value"])

    machine = machine_line(args.build_dir)
    lines = [f"Machine: {machine}", f"Runs: {runs}{' (smoke)' if args.smoke else ''}, "
             f"{time.time() - started:.1f} s", "",
             "| workload | metric | impl | median | min | max | duet/impl (median of per-run ratios) | impl/duet |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for (workload, metric), by_impl in sorted(samples.items()):
        duet = by_impl.get("duet", [])
        for impl, values in by_impl.items():
            ratio = speed = ""
            if impl != "duet" and duet and len(duet) == len(values):
                per_run = [d / v for d, v in zip(duet, values) if v]
                if per_run:
                    med = statistics.median(per_run)
                    ratio = f"{med:.3f}"
                    speed = f"{1 / med:.2f}x" if med else "inf"
            lines.append(f"| {workload} | {metric} | {impl} | {statistics.median(values):.2f} | "
                         f"{min(values):.2f} | {max(values):.2f} | {ratio} | {speed} |")
    lines.append("")
    lines.append("Goals (impl/duet speedup, from the issues):")
    for workload, metric, peer, target in GOALS:
        d = samples.get((workload, metric), {}).get("duet")
        p = samples.get((workload, metric), {}).get(peer)
        if not d or not p:
            lines.append(f"- {workload} {metric} vs {peer}: not measured")
            continue
        speed = statistics.median(p) / statistics.median(d) if statistics.median(d) else float("inf")
        verdict = "met" if speed >= target else "SHORT"
        lines.append(f"- {workload} {metric}: duet {statistics.median(d):.2f} vs {peer} "
                     f"{statistics.median(p):.2f} -> {speed:.2f}x (goal >= {target}x): {verdict}")
    for workload, metric, limit in ABSOLUTE_GOALS:
        d = samples.get((workload, metric), {}).get("duet")
        if not d:
            lines.append(f"- {workload} {metric}: not measured")
            continue
        verdict = "met" if statistics.median(d) <= limit else "SHORT"
        lines.append(f"- {workload} {metric}: duet {statistics.median(d):.2f} (goal <= {limit}): {verdict}")
    for workload, metric, ref_workload, ref_metric, limit in RELATIVE_GOALS:
        d = samples.get((workload, metric), {}).get("duet")
        r = samples.get((ref_workload, ref_metric), {}).get("duet")
        if not d or not r:
            lines.append(f"- {workload} {metric} vs {ref_workload}: not measured")
            continue
        ratio = statistics.median(d) / statistics.median(r)
        verdict = "met" if ratio <= limit else "SHORT"
        lines.append(f"- {workload} {metric}: {statistics.median(d):.2f} vs {ref_workload} "
                     f"{statistics.median(r):.2f} -> {ratio:.2f}x (goal <= {limit}x): {verdict}")
    for workload, metric, what in [("call_soon_batch", "allocs_per_callback", "callback (batch)"),
                                   ("task_spawn", "allocs_per_task", "task"),
                                   ("ping_pong_future", "allocs_per_hop", "ping-pong hop")]:
        allocs = samples.get((workload, metric), {}).get("duet")
        if allocs:
            lines.append(f"- duet heap allocations per {what}: {statistics.median(allocs):.4f} (goal 0)")
    overhead = samples.get(("task_spawn", "overhead_bytes_per_task"), {}).get("duet")
    if overhead:
        lines.append(f"- duet scheduler bytes per task, frame excluded: {overhead[0]:.0f}")
    report = "\n".join(lines)
    print(report)

    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"machine": machine, "runs": runs, "smoke": args.smoke,
                       "samples": [{"workload": w, "metric": m, "impl": i, "values": v}
                                   for (w, m), by in sorted(samples.items()) for i, v in by.items()]}, f, indent=1)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(report + "\n")
    # Smoke mode checks only that everything ran and reported.
    expected = {(w, m) for w, m, _, _ in GOALS}
    missing = [k for k in expected if k not in samples or "duet" not in samples[k] or len(samples[k]) < 2]
    if missing:
        sys.exit(f"missing results: {missing}")
    print("1 passed, 0 failed" if args.smoke else "")


if __name__ == "__main__":
    main()
