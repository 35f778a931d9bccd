#!/usr/bin/env python3
"""Starts headroom and its peers, measures their CPU and RSS over the same window, prints a table.

    python3 benches/overhead/measure.py --headroom target/agent/headroom [--duration 300]
        [--aged-days 14] [--baseline PATH/TO/EARLIER/headroom]

With --baseline, an earlier build of the agent runs beside this one as one more peer, so a
change is judged by a ratio measured in one window rather than by two runs at different times.
"""
import argparse
import glob
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ns(pid):
    """On-CPU nanoseconds of every thread of pid (first field of schedstat)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that exited between glob and open
    return total


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def scraper(url, stop, errors):
    """Scrapes url once a second until stop is set (bounded by the measurement window)."""
    nxt = time.monotonic()
    while not stop.is_set():
        try:
            urllib.request.urlopen(url, timeout=2).read()
        except OSError:
            errors.append(url)
        nxt += 1.0
        stop.wait(max(0.0, nxt - time.monotonic()))


def age_store(headroom, cfg, state, days):
    """Gives the agent `days` of stored demand history (1-minute rollups, then the last 24 h
    at 10 s, as it keeps them), so that it starts with a full forecaster: its steady state."""
    p = subprocess.Popen([headroom, "agent", "--config", cfg],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = os.path.join(state, "headroom.db")
    deadline = time.monotonic() + 30
    while not os.path.exists(db) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    now = int(time.time()) // 60 * 60
    con = sqlite3.connect(db)
    con.execute("INSERT OR IGNORE INTO metric (name) VALUES ('cpu.busy_cores')")
    (mid,) = con.execute("SELECT id FROM metric WHERE name = 'cpu.busy_cores'").fetchone()

    def load(t):
        return 0.5 + 0.3 * math.sin(2 * math.pi * t / 86400) + 0.05 * math.sin(t / 7.0)

    rows = [(mid, t, load(t), load(t), load(t), 6) for t in range(now - days * 86400, now - 86400, 60)]
    con.executemany("INSERT OR REPLACE INTO rollup_1m VALUES (?, ?, ?, ?, ?, ?)", rows)
    rows = [(mid, t, load(t), load(t), load(t), 10) for t in range(now - 86400, now, 10)]
    con.executemany("INSERT OR REPLACE INTO rollup_10s VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=300)
    ap.add_argument("--headroom", required=True)
    ap.add_argument("--baseline", help="another headroom binary (an earlier build) run beside it, "
                    "with its own state, as one more peer")
    ap.add_argument("--warmup", type=float, default=15, help="seconds before measuring")
    ap.add_argument("--aged-days", type=float, default=0,
                    help="start headroom with this many days of stored history (its steady state)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="headroom-overhead-")
    procs = {}
    try:
        agents = [("headroom", args.headroom, "")]
        if args.baseline:
            agents.append(("headroom (baseline)", args.baseline, "-baseline"))
        for name, exe, suffix in agents:
            cfg = os.path.join(tmp, f"headroom{suffix}.toml")
            state = f"{tmp}/state{suffix}"
            with open(cfg, "w") as f:
                f.write(
                    f'[agent]\nstate_directory = "{state}"\nsocket = "{tmp}/headroom{suffix}.sock"\n'
                    'interval = "1s"\n'
                )
            if args.aged_days > 0:
                age_store(exe, cfg, state, int(args.aged_days))
            procs[name] = subprocess.Popen(
                [exe, "agent", "--config", cfg],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, f"headroom{suffix}.log"), "w"),
            )
        ne = shutil.which("prometheus-node-exporter") or "node_exporter"
        p_def, p_min = free_port(), free_port()
        procs["node_exporter (defaults)"] = subprocess.Popen(
            [ne, f"--web.listen-address=127.0.0.1:{p_def}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        procs["node_exporter (5 collectors)"] = subprocess.Popen(
            [ne, f"--web.listen-address=127.0.0.1:{p_min}", "--collector.disable-defaults",
             "--collector.cpu", "--collector.diskstats", "--collector.netdev",
             "--collector.loadavg", "--collector.meminfo"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        ccfg = os.path.join(tmp, "collectd.conf")
        with open(ccfg, "w") as f:
            f.write(
                f'Interval 1\nBaseDir "{tmp}"\nPIDFile "{tmp}/collectd.pid"\n'
                'PluginDir "/usr/lib/collectd"\nTypesDB "/usr/share/collectd/types.db"\n'
                "LoadPlugin cpu\nLoadPlugin disk\nLoadPlugin interface\nLoadPlugin load\nLoadPlugin memory\n"
            )
        procs["collectd"] = subprocess.Popen(
            ["collectd", "-f", "-C", ccfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        stop = threading.Event()
        errors = []
        scrapers = [
            threading.Thread(target=scraper, args=(f"http://127.0.0.1:{p}/metrics", stop, errors), daemon=True)
            for p in (p_def, p_min)
        ]
        for t in scrapers:
            t.start()
        time.sleep(args.warmup)
        for name, p in procs.items():
            if p.poll() is not None:
                sys.exit(f"{name} exited early with {p.returncode}")
        start_cpu = {n: cpu_ns(p.pid) for n, p in procs.items()}
        start = time.monotonic()
        rss = {n: [] for n in procs}
        while time.monotonic() - start < args.duration:
            for n, p in procs.items():
                rss[n].append(rss_kib(p.pid))
            time.sleep(1.0)
        elapsed = time.monotonic() - start
        end_cpu = {n: cpu_ns(p.pid) for n, p in procs.items()}
        stop.set()
        rows = []
        for n in procs:
            cpu = (end_cpu[n] - start_cpu[n]) / (elapsed * 1e9) * 100.0
            r = [x for x in rss[n] if x > 0]
            rows.append((n, cpu, sum(r) / len(r) / 1024 if r else 0, max(r) / 1024 if r else 0))
        print(f"\noverhead over {elapsed:.0f} s at 1 Hz ({os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
        print(f"{'process':<30} {'CPU % of one core':>18} {'RSS mean MiB':>13} {'RSS max MiB':>12}")
        for n, cpu, mean, mx in rows:
            print(f"{n:<30} {cpu:>18.3f} {mean:>13.1f} {mx:>12.1f}")
        h = rows[0]
        print()
        for n, cpu, mean, mx in rows[1:]:
            print(f"headroom / {n:<30} CPU {h[1] / cpu if cpu else float('inf'):.2f}x   RSS {h[2] / mean if mean else float('inf'):.2f}x")
        if errors:
            print(f"scrape errors: {len(errors)}")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
