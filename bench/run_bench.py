#!/usr/bin/env python3
"""Runs duet's benchmarks and its peers' side by side and reports ratios.

    bench/run_bench.py --build-dir build/bench [--runs 5] [--smoke] [--out DIR]

Each run executes every implementation's binary once, one process at a
time, rotating which implementation goes first so that none always gets the
coolest (or warmest) machine. For every (workload, metric) it prints the
median, min and max per implementation and, per peer, the median over runs
of the per-run ratio duet/peer, and "duet speedup", how many times better
duet is: peer/duet for times and sizes (lower is better), duet/peer for the
rates in HIGHER_IS_BETTER. It writes results.json (every sample) and
results.md (the table and the machine).

The TCP section (W6) starts each echo server of ECHO_SERVERS in turn, runs
the one load generator, bench/echo_client, against it with 1 and with 10
connections, and reads the server's CPU time from /proc around the client's
run. Every server follows the contract written at the top of
bench/echo_client.cpp; duet's joins by existing in the build directory.
"""
import argparse
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# (implementation, binary). An implementation may have several binaries;
# each run executes all of them once, in rotating order. bulk_reference is
# loopback bulk transfer with blocking sockets: a duet stream binary that
# reports bulk_transfer MiB_per_s is read against it.
BINARIES = [("duet", "duet_loop_bench"), ("asio", "asio_loop_bench"), ("libuv", "uv_loop_bench"),
            ("duet", "duet_task_bench"), ("asio", "asio_task_bench"), ("duet", "duet_context_bench"),
            ("duet", "duet_fiber_bench"), ("reference", "bulk_reference"), ("duet", "duet_bulk_bench"),
            ("duet", "duet_xthread_bench"), ("asio", "asio_xthread_bench"), ("libuv", "uv_xthread_bench"),
            ("reference", "futex_floor"),
            ("duet", "duet_memory_bench"), ("asio", "asio_memory_bench"), ("libuv", "uv_memory_bench")]

# W8: duet's W1-W4 binaries built with Emscripten (the wasm-bench preset),
# run under Node as implementation "duet-wasm" and read against native duet.
WASM_BINARIES = ["duet_loop_bench", "duet_task_bench"]
WASM_WORKLOADS = {"call_soon_batch", "call_soon_chain", "task_spawn", "ping_pong_future", "ping_pong_queue", "timers"}
WASM_GOAL = 2.0  # wasm time within this factor of native
# W9: in headless Chromium, the latency from a JavaScript callback scheduling
# work (call_soon) to that work running, for duet's driver (MessageChannel)
# and for the same driver made to use setTimeout(0) (what a setTimeout-based
# driver costs); tests/web/browser/run.mjs --latency-only measures both.
BROWSER_LATENCY_GOAL_MS = 0.2

# TCP echo servers, as (implementation, binary), all to the contract at the
# top of bench/echo_client.cpp. "reference" is one blocking thread per
# connection: no event loop, the kernel's cost alone. A missing duet server
# is skipped with a note; the others must be built.
ECHO_SERVERS = [("duet", "duet_echo_server"), ("asio", "asio_echo_server"), ("libuv", "uv_echo_server"),
                ("reference", "blocking_echo_server")]
ECHO_CLIENT = "echo_client"
# connections -> requests per connection: 100,000 requests in all, 1-2 s on a
# 2-core machine, so that the server's CPU time, which /proc gives in clock
# ticks (10 ms), is known to about 2%. Every run also stops at ECHO_CAP_S.
ECHO_MESSAGES = {1: 100_000, 10: 10_000}
ECHO_WARMUP = 100
ECHO_CAP_S = 10.0
ECHO_SMOKE = {"messages": 200, "warmup": 20, "cap": 5.0}

# Metrics where more is better (rates); every other metric is a time or a
# size, where less is better.
HIGHER_IS_BETTER = {"requests_per_s", "MiB_per_s"}

# Goals from the issues, as (workload, metric, peer, minimum duet speedup:
# peer/duet for times and sizes, duet/peer for HIGHER_IS_BETTER).
GOALS = [
    ("call_soon_batch", "ns_per_callback", "asio", 5.0),
    ("call_soon_chain", "ns_per_callback", "asio", 1.2),
    ("timers", "schedule_ns", "libuv", 2.0),
    ("timers", "cancel_ns", "asio", 2.0),
    ("timers", "rss_bytes_per_timer", "libuv", 2.0),  # <= 0.5x libuv's memory
    ("task_spawn", "ns_per_task", "asio", 8.0),
    ("ping_pong_future", "ns_per_hop", "asio", 3.0),
    ("xthread_throughput", "ns_per_post", "libuv", 1.0),  # >= libuv with its hand-made queue
    ("xthread_rtt_cross_cpu", "p50_ns", "reference", 1 / 1.2),  # within 1.2x of the futex floor
    ("tcp_echo_c1", "server_cpu_us_per_request", "asio", 1 / 0.8),  # <= 0.8x Asio's CPU per request
    ("tcp_echo_c10", "server_cpu_us_per_request", "asio", 1 / 0.8),
    ("tcp_echo_c1", "requests_per_s", "asio", 1.0),  # >= Asio's in every column
    ("tcp_echo_c10", "requests_per_s", "asio", 1.0),
]

# Goals against the best of several peers, as (workload, metric, peers,
# minimum speedup over the best peer). Not measured while duet has no server.
BEST_PEER_GOALS = [
    ("tcp_echo_c1", "requests_per_s", ("asio", "libuv"), 1.1),
    ("tcp_echo_c10", "requests_per_s", ("asio", "libuv"), 1.1),
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


def run_once(binary, smoke, node=False):
    prefix = list(binary[:-1]) if isinstance(binary, (list, tuple)) else []  # e.g. [wine-run.sh]
    binary = binary[-1] if isinstance(binary, (list, tuple)) else binary
    cmd = (["node", "--stack-size=8000"] if node else []) + prefix + [binary] + (["--smoke"] if smoke else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit(f"{binary} failed with {out.returncode}:\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def higher_is_better(metric):
    return metric in HIGHER_IS_BETTER


def speedup(metric, duet, peer):
    """How many times better duet's value is than the peer's."""
    if higher_is_better(metric):
        return duet / peer if peer else float("inf")
    return peer / duet if duet else float("inf")


class EchoServer:
    """One echo server process under the contract of bench/echo_client.cpp.

    Leaving the with-block always stops it, also on an error or an interrupt:
    stdin is closed (the contract's stop), then SIGTERM after STOP_WAIT_S, then
    SIGKILL, and the process is reaped. Leaving normally also checks that it
    exited with status 0."""

    PORT_WAIT_S = 10.0
    STOP_WAIT_S = 5.0
    TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")

    def __init__(self, path):
        self.path = path  # a program, or a command list ([wine-run.sh, server.exe])
        self.proc = None
        self.stderr = tempfile.TemporaryFile()
        self.port = None

    def __enter__(self):
        command = list(self.path) if isinstance(self.path, (list, tuple)) else [self.path]
        self.proc = subprocess.Popen(command + ["--port", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, bufsize=0)
        try:
            self.port = self._read_port()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self._stop()
        failed = exc_type is None and self.proc.returncode != 0
        message = f"{self.path} exited with {self.proc.returncode} when stopped:\n{self.errors()}" if failed else ""
        self.stderr.close()
        if failed:
            sys.exit(message)
        return False

    def cpu_us(self):
        """utime + stime of every thread of the server so far, in µs."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": the comm may hold spaces
        return (int(fields[11]) + int(fields[12])) * self.TICK_US  # fields 14 and 15 of proc(5)

    def errors(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def _read_port(self):
        deadline = time.monotonic() + self.PORT_WAIT_S
        fd = self.proc.stdout.fileno()
        data = b""
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                sys.exit(f"{self.path}: no PORT line within {self.PORT_WAIT_S:.0f} s:\n{self.errors()}")
            chunk = os.read(fd, 256)
            if not chunk:
                sys.exit(f"{self.path} exited before printing its port:\n{self.errors()}")
            data += chunk
        line = data.split(b"\n", 1)[0].decode(errors="replace")
        if not line.startswith("PORT ") or not line[5:].strip().isdigit():
            sys.exit(f"{self.path}: first line {line!r}, expected 'PORT <n>'")
        return int(line[5:])

    def _stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        for action in (None, self.proc.terminate, self.proc.kill):
            if action:
                action()
            try:
                self.proc.wait(timeout=self.STOP_WAIT_S)
                break
            except subprocess.TimeoutExpired:
                pass
        else:
            self.proc.wait()
        self.proc.stdout.close()


def run_echo(server, client, connections, smoke):
    """One client run against a fresh server: records and notes."""
    messages = ECHO_SMOKE["messages"] if smoke else ECHO_MESSAGES[connections]
    warmup = ECHO_SMOKE["warmup"] if smoke else ECHO_WARMUP
    cap = ECHO_SMOKE["cap"] if smoke else ECHO_CAP_S
    with EchoServer(server) as srv:
        cmd = [client, "--port", str(srv.port), "--connections", str(connections), "--messages", str(messages),
               "--size", "1024", "--warmup", str(warmup), "--duration-cap", str(cap)]
        cpu_before = srv.cpu_us()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * cap + 60)
        cpu_after = srv.cpu_us()
        if out.returncode != 0:
            sys.exit(f"echo_client against {server} failed with {out.returncode}:\n{out.stderr}"
                     f"server's stderr:\n{srv.errors()}")
    got = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            got[rec["metric"]] = rec
    workload = got["requests_per_s"]["workload"]
    records = [{"workload": workload, "metric": "requests_per_s", "value": got["requests_per_s"]["value"]},
               {"workload": workload, "metric": "server_cpu_us_per_request",
                "value": (cpu_after - cpu_before) / got["requests_total"]["value"]}]
    notes = []
    if got["capped"]["value"]:
        name = os.path.basename(server if isinstance(server, str) else server[-1])  # [wine-run.sh, x.exe]
        notes.append(f"{workload} {name}: stopped by the {cap:g} s cap after "
                     f"{got['requests']['value']:.0f} of {messages * connections} requests")
    return records, notes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny N, one run: checks that everything builds and runs")
    ap.add_argument("--out", default=None, help="directory for results.json and results.md")
    ap.add_argument("--browser-build-dir", default=None,
                    help="build dir of the wasm preset (with tests/web_probe.js): also measure the "
                         "JS-callback-to-work latency in headless Chromium (W9)")
    ap.add_argument("--wine-build-dir", default=None,
                    help="build dir of the windows-bench preset: also run duet's IOCP echo server under Wine "
                         "against the same client (indicative figures, not Windows ones)")
    ap.add_argument("--wasm-build-dir", default=None,
                    help="build dir of the wasm-bench preset: also run W1-W4 as wasm under Node (W8)")
    args = ap.parse_args()
    runs = 1 if args.smoke else args.runs

    # A SIGTERM to the harness unwinds like Ctrl-C, so that no server outlives it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    def bench_path(name):
        return os.path.join(args.build_dir, "bench", name)

    binaries = []
    for impl, name in BINARIES:
        if not os.path.exists(bench_path(name)):
            sys.exit(f"missing {bench_path(name)}: build the 'bench' preset first")
        binaries.append((impl, bench_path(name)))
    notes = []
    servers = []
    for impl, name in ECHO_SERVERS:
        if os.path.exists(bench_path(name)):
            servers.append((impl, bench_path(name)))
        elif impl == "duet":
            notes.append(f"no {bench_path(name)}: tcp_echo runs without duet")
            print(f"note: {notes[-1]}", file=sys.stderr)
        else:
            sys.exit(f"missing {bench_path(name)}: build the 'bench' preset first")
    client = bench_path(ECHO_CLIENT)
    if not os.path.exists(client):
        sys.exit(f"missing {client}: build the 'bench' preset first")

    wasm = []
    if args.wasm_build_dir:
        for name in WASM_BINARIES:
            path = os.path.join(args.wasm_build_dir, "bench", name + ".js")
            if not os.path.exists(path):
                sys.exit(f"missing {path}: build the 'wasm-bench' preset first")
            wasm.append(path)

    if args.wine_build_dir:
        exe = os.path.join(args.wine_build_dir, "bench", "duet_echo_server.exe")
        if not os.path.exists(exe):
            sys.exit(f"missing {exe}: build the 'windows-bench' preset first")
        wine_run = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cmake", "wine-run.sh")
        servers.append(("duet-iocp (Wine)", [wine_run, exe]))
        wine_xthread = os.path.join(args.wine_build_dir, "bench", "duet_xthread_bench.exe")
        if not os.path.exists(wine_xthread):
            sys.exit(f"missing {wine_xthread}: build the 'windows-bench' preset first")
        notes.append("duet-iocp (Wine): duet's echo server (streams over IOCP) under Wine 8 on this Linux machine, the same "
                     "Linux client; Wine emulates IOCP in user space (wineserver), so these are indicative, "
                     "not Windows figures; its server CPU excludes wineserver's")

    samples = {}  # (workload, metric) -> impl -> [value per run]

    def record(impl, rec):
        samples.setdefault((rec["workload"], rec["metric"]), {}).setdefault(impl, []).append(rec["value"])

    started = time.time()
    for r in range(runs):
        order = binaries[r % len(binaries):] + binaries[: r % len(binaries)]
        for impl, path in order:
            for rec in run_once(path, args.smoke):
                record(impl, rec)
        if args.wine_build_dir:
            for rec in run_once([wine_run, wine_xthread], args.smoke):
                record("duet-iocp (Wine)", rec)
        for path in wasm:
            for rec in run_once(path, args.smoke, node=True):
                # Wall-clock times only: the memory figures read /proc and the
                # CPU-time ones the process CPU clock, which Node lacks.
                if rec["workload"] in WASM_WORKLOADS and "ns" in rec["metric"] and "cpu" not in rec["metric"]:
                    record("duet-wasm", rec)
        for connections in sorted(ECHO_MESSAGES):
            for impl, path in servers[r % len(servers):] + servers[: r % len(servers)]:
                records, run_notes = run_echo(path, client, connections, args.smoke)
                for rec in records:
                    record(impl, rec)
                notes += [f"run {r + 1}: {n}" for n in run_notes]

    if args.browser_build_dir:
        out = os.path.join(args.out or args.build_dir, "browser_latency.json")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        probes = 20 if args.smoke else 300
        runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "web", "browser", "run.mjs")
        proc = subprocess.run(["node", runner, args.browser_build_dir, "--latency-only", "--latency", str(probes),
                               "--out", out], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            sys.exit(f"browser latency run failed:\n{proc.stdout}{proc.stderr}")
        with open(out) as f:
            lat = json.load(f)["latency"]
        record("duet-web (MessageChannel)", {"workload": "browser_js_to_work", "metric": "median_ms",
                                             "value": lat["message_channel_ms"]})
        record("setTimeout(0) driver", {"workload": "browser_js_to_work", "metric": "median_ms",
                                        "value": lat["set_timeout_ms"]})
        notes.append(f"W9: {probes} probes in one page, performance.now() "
                     f"{'5 us' if lat.get('cross_origin_isolated') else '0.1 ms'} resolution")

    machine = machine_line(args.build_dir)
    lines = [f"Machine: {machine}", f"Runs: {runs}{' (smoke)' if args.smoke else ''}, "
             f"{time.time() - started:.1f} s", "",
             "| workload | metric | impl | median | min | max | duet/impl (median of per-run ratios) | duet speedup |",
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
                    if higher_is_better(metric):
                        speed = f"{med:.2f}x"
                    else:
                        speed = f"{1 / med:.2f}x" if med else "inf"
            lines.append(f"| {workload} | {metric} | {impl} | {statistics.median(values):.2f} | "
                         f"{min(values):.2f} | {max(values):.2f} | {ratio} | {speed} |")
    lines.append("")
    lines.append("duet speedup: how many times better duet is than the impl of that row, impl/duet for "
                 "times and sizes, duet/impl for " + ", ".join(sorted(HIGHER_IS_BETTER)) + " (higher is better).")
    lines += [f"Note: {n}" for n in notes]
    lines.append("")
    lines.append("Goals (duet speedup, from the issues):")
    for workload, metric, peer, target in GOALS:
        d = samples.get((workload, metric), {}).get("duet")
        p = samples.get((workload, metric), {}).get(peer)
        if not d or not p:
            lines.append(f"- {workload} {metric} vs {peer}: not measured")
            continue
        speed = speedup(metric, statistics.median(d), statistics.median(p))
        verdict = "met" if speed >= target else "SHORT"
        lines.append(f"- {workload} {metric}: duet {statistics.median(d):.2f} vs {peer} "
                     f"{statistics.median(p):.2f} -> {speed:.2f}x (goal >= {target:.2f}x): {verdict}")
    for workload, metric, peers, target in BEST_PEER_GOALS:
        by_impl = samples.get((workload, metric), {})
        d = by_impl.get("duet")
        measured = [p for p in peers if by_impl.get(p)]
        if not d or not measured:
            lines.append(f"- {workload} {metric} vs best of {'/'.join(peers)}: not measured")
            continue
        # The best peer is the one duet beats by the least.
        best = min(measured, key=lambda p: speedup(metric, 1.0, statistics.median(by_impl[p])))
        speed = speedup(metric, statistics.median(d), statistics.median(by_impl[best]))
        verdict = "met" if speed >= target else "SHORT"
        lines.append(f"- {workload} {metric}: duet {statistics.median(d):.2f} vs best of {'/'.join(peers)} "
                     f"({best} {statistics.median(by_impl[best]):.2f}) -> {speed:.2f}x (goal >= {target}x): {verdict}")
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
    for (workload, metric), by_impl in sorted(samples.items()):
        w, n = by_impl.get("duet-wasm"), by_impl.get("duet")
        if w and n:
            ratio = statistics.median(w) / statistics.median(n)
            verdict = "met" if ratio <= WASM_GOAL else "SHORT"
            lines.append(f"- wasm {workload} {metric}: {statistics.median(w):.2f} vs native {statistics.median(n):.2f} "
                         f"-> {ratio:.2f}x native (goal <= {WASM_GOAL}x): {verdict}")
    for (workload, metric), by_impl in sorted(samples.items()):
        w, n = by_impl.get("duet-iocp (Wine)"), by_impl.get("duet")
        if w and (workload.startswith("xthread") or (workload.startswith("tcp_echo") and metric == "requests_per_s")):
            lines.append(f"- Wine, indicative only (issue 9): {workload} {metric}: duet on IOCP under Wine "
                         f"{statistics.median(w):.0f} vs duet on epoll on Linux "
                         f"{statistics.median(n) if n else float('nan'):.0f}")
    lat = samples.get(("browser_js_to_work", "median_ms"), {})
    if lat:
        mc = statistics.median(lat["duet-web (MessageChannel)"])
        st = statistics.median(lat["setTimeout(0) driver"])
        verdict = "met" if mc < BROWSER_LATENCY_GOAL_MS else "SHORT"
        lines.append(f"- W9 browser JS callback -> work: duet's driver {mc:.3f} ms vs a setTimeout(0) driver "
                     f"{st:.3f} ms (goal < {BROWSER_LATENCY_GOAL_MS} ms): {verdict}")
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
            json.dump({"machine": machine, "runs": runs, "smoke": args.smoke, "notes": notes,
                       "samples": [{"workload": w, "metric": m, "impl": i, "values": v}
                                   for (w, m), by in sorted(samples.items()) for i, v in by.items()]}, f, indent=1)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(report + "\n")
    # Smoke mode checks only that everything ran and reported.
    expected = {(w, m) for w, m, _, _ in GOALS}
    missing = [k for k in expected if k not in samples or "duet" not in samples[k] or len(samples[k]) < 2]
    # The TCP section: every server that was run, at every connection count.
    missing += [(f"tcp_echo_c{c}", m, impl) for c in ECHO_MESSAGES for m in ("requests_per_s", "server_cpu_us_per_request")
                for impl, _ in servers if impl not in samples.get((f"tcp_echo_c{c}", m), {})]
    if "reference" not in samples.get(("bulk_transfer", "MiB_per_s"), {}):
        missing.append(("bulk_transfer", "MiB_per_s", "reference"))
    for metric in ("bytes_per_idle_task", "bytes_per_handle", "bytes_per_timer"):
        if "duet" not in samples.get(("memory", metric), {}):
            missing.append(("memory", metric, "duet"))
    if wasm:
        missing += [(w, "duet-wasm") for w in ("call_soon_batch", "task_spawn", "ping_pong_future", "timers")
                    if not any(k[0] == w and "duet-wasm" in v for k, v in samples.items())]
    if args.browser_build_dir and not lat:
        missing.append(("browser_js_to_work", "median_ms"))
    if missing:
        sys.exit(f"missing results: {missing}")
    print("1 passed, 0 failed" if args.smoke else "")


if __name__ == "__main__":
    main()
