#!/usr/bin/env python3
"""Prints the bench/compare table (Markdown) from corridor-load JSON summaries.

Usage: table.py DIR   (reads DIR/s<scenario>-<system>-r<rep>.json and DIR/machine.txt)
Each figure is the median over the runs of that scenario and system; throughput
also shows the range. Ratios are Corridor/peer (for latency, CPU and memory,
below 1 means Corridor is better; for rates, above 1).
"""
import glob
import json
import os
import re
import statistics
import sys

SYSTEMS = ["corridor", "nats", "rabbitmq"]
TITLES = {
    "1": "one officer, one message at a time (unary, window 1)",
    "2": "64 concurrent senders, one at a time each",
    "3": "pipelined stream, 256 in flight",
    "4": "fan-out to 3 agencies, 256 in flight",
    "5": "offline agency: backlog builds, then drains",
}


def get(d, path):
    for p in path.split("."):
        if not isinstance(d, dict) or p not in d or d[p] is None:
            return None
        d = d[p]
    return d


def load(directory):
    runs = {}
    for f in sorted(glob.glob(os.path.join(directory, "s*-*-r*.json"))):
        m = re.match(r"s(\d+)-(\w+)-r(\d+)\.json", os.path.basename(f))
        if not m:
            continue
        try:
            with open(f) as fh:
                runs.setdefault((m.group(1), m.group(2)), []).append(json.load(fh))
        except (OSError, json.JSONDecodeError):
            pass
    return runs


def median(runs, path):
    vals = [get(r, path) for r in runs]
    vals = [v for v in vals if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None


def rng(runs, path):
    vals = [get(r, path) for r in runs]
    vals = [v for v in vals if isinstance(v, (int, float))]
    return (min(vals), max(vals)) if len(vals) > 1 else None


def fmt(v, kind):
    if v is None:
        return "n/a"
    if kind == "rate":
        return f"{v:,.0f}"
    if kind == "ms":
        return f"{v / 1000:.2f}" if v < 100000 else f"{v / 1000:,.0f}"
    if kind == "us":
        return f"{v:.1f}"
    if kind == "mib":
        return f"{v / 1024:,.0f}"
    if kind == "ratio":
        return f"{v:.2f}"
    return str(v)


def main():
    directory = sys.argv[1]
    runs = load(directory)
    out = []
    machine = os.path.join(directory, "machine.txt")
    if os.path.exists(machine):
        out.append("```\n" + open(machine).read().strip() + "\n```\n")
    scenarios = sorted({s for s, _ in runs}, key=int)
    logs = glob.glob(os.path.join(directory, "s*-*-r*.log"))
    tried = {tuple(re.match(r"s(\d+)-(\w+)-r", os.path.basename(f)).groups()) for f in logs}
    scenarios = sorted({s for s, _ in runs} | {s for s, _ in tried}, key=int)
    for sc in scenarios:
        for s in SYSTEMS:
            if (sc, s) in tried and (sc, s) not in runs:
                runs[(sc, s)] = []  # ran, but wrote no summary: shown as n/a
        systems = [s for s in SYSTEMS if (sc, s) in runs]
        n = {s: len(runs[(sc, s)]) for s in systems}
        failed_runs = [s for s in systems if n[s] == 0]
        out.append(f"### Scenario {sc}: {TITLES.get(sc, '')}\n")
        head = "| figure | " + " | ".join(f"{s} (n={n[s]})" for s in systems)
        peers = [s for s in systems if s != "corridor"] if "corridor" in systems else []
        head += "".join(f" | corridor/{p}" for p in peers) + " |"
        out.append(head)
        out.append("|---" * (1 + len(systems) + len(peers)) + "|")
        if sc == "5":
            rows = [
                ("backlog messages", "backlog.messages", "rate"),
                ("build: acked/s (agency offline)", "backlog.build_rate_per_s", "rate"),
                ("drain: deliveries/s", "backlog.drain_rate_per_s", "rate"),
                ("build: server CPU µs/exchange", "server.cpu_us_per_exchange", "us"),
                ("drain: server CPU µs/delivery", "backlog.server_cpu_us_per_delivery", "us"),
                ("RSS before build (MiB)", "backlog.rss_before_kib", "mib"),
                ("RSS max while building (MiB)", "backlog.rss_max_build_kib", "mib"),
                ("RSS after build (MiB)", "backlog.rss_after_build_kib", "mib"),
                ("RSS max while draining (MiB)", "backlog.rss_max_drain_kib", "mib"),
                ("submit→ack p99 (ms), build", "submit_to_ack.p99_us", "ms"),
                ("fsync calls during build", "durability.fsync_calls", "rate"),
                ("acks per fsync", "durability.acks_per_fsync", "us"),
                ("keys written per exchange (broker's count)", "durability.keys_per_exchange", "us"),
                ("bytes written per exchange (broker's count)", "durability.bytes_per_exchange", "rate"),
            ]
        else:
            rows = [
                ("exchanges/s (acked)", "throughput.exchanges_per_s", "rate"),
                ("deliveries/s", "throughput.deliveries_per_s", "rate"),
                ("submit→ack p50 (ms)", "submit_to_ack.p50_us", "ms"),
                ("submit→ack p90 (ms)", "submit_to_ack.p90_us", "ms"),
                ("submit→ack p99 (ms)", "submit_to_ack.p99_us", "ms"),
                ("submit→ack p99.9 (ms)", "submit_to_ack.p999_us", "ms"),
                ("submit→delivery p50 (ms)", "submit_to_delivery.p50_us", "ms"),
                ("submit→delivery p99 (ms)", "submit_to_delivery.p99_us", "ms"),
                ("submit→delivery p99.9 (ms)", "submit_to_delivery.p999_us", "ms"),
                ("server CPU µs/exchange", "server.cpu_us_per_exchange", "us"),
                ("server CPU (cores)", "server.cpu_cores", "us"),
                ("client CPU µs/exchange", "client.cpu_us_per_exchange", "us"),
                ("server RSS max in run (MiB)", "server.max_sampled_rss_kib", "mib"),
                ("fsync calls in window", "durability.fsync_calls", "rate"),
                ("acks per fsync", "durability.acks_per_fsync", "us"),
                ("synced writes (broker's count)", "durability.broker_synced_writes", "rate"),
                ("keys written per exchange (broker's count)", "durability.keys_per_exchange", "us"),
                ("bytes written per exchange (broker's count)", "durability.bytes_per_exchange", "rate"),
                ("audit entries per exchange", "durability.audit_entries_per_exchange", "us"),
            ]
        for label, path, kind in rows:
            vals = {s: median(runs[(sc, s)], path) for s in systems}
            cells = []
            for s in systems:
                c = fmt(vals[s], kind)
                r = rng(runs[(sc, s)], path) if kind == "rate" and "per_s" in path else None
                if r:
                    c += f" ({fmt(r[0], kind)}–{fmt(r[1], kind)})"
                cells.append(c)
            for p in peers:
                a, b = vals.get("corridor"), vals.get(p)
                cells.append(fmt(a / b, "ratio") if a is not None and b else "n/a")
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        # Delivery check: summed over runs, never a median.
        cells = []
        for s in systems:
            rs = runs[(sc, s)]
            miss = sum(get(r, "delivery_check.missing") or 0 for r in rs)
            dup = sum(get(r, "delivery_check.duplicates") or 0 for r in rs)
            unexp = sum(get(r, "delivery_check.unexpected") or 0 for r in rs)
            exp = sum(get(r, "delivery_check.expected") or 0 for r in rs)
            failed = sum((get(r, "delivery_check.failed") or 0) + (get(r, "delivery_check.unanswered") or 0) for r in rs)
            ok = "exactly once" if miss == dup == unexp == failed == 0 else "NOT exactly once"
            cells.append(f"{ok}: {exp:,} expected, {miss} missing, {dup} dup, {unexp} unexpected, {failed} failed")
        cells += ["" for _ in peers]
        out.append("| delivery check (all runs) | " + " | ".join(cells) + " |")
        if failed_runs:
            out.append(f"\nno summary from: {', '.join(failed_runs)} (the run failed or timed out; see its .log)\n")
        loads = sorted({get(r, "load_average.before") for s in systems for r in runs[(sc, s)]} - {None})
        if loads:
            out.append(f"\nload average (1/5/15 min) before these runs: {', '.join(loads)}\n")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
