#!/usr/bin/env python3
"""Reaction time of the reactive path: a load step in the demand signal to a scale-out decision.

    python3 benches/reaction/measure.py --headroom target/release/headroom [--trials 10] [--interval 1s]

Runs the agent at its default 1 s cadence with an application gauge (a local Prometheus
endpoint) as demand, steps the gauge from well under to well over the host's capacity, and
times how long the agent takes to report a scale-out decision on its control socket. Between
trials demand drops back and the agent returns to hold. Prints every trial, the median and the
worst; the goal is <= 2 s.
"""
import argparse
import http.server
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time

VALUE = {"v": 2.0}


class Gauge(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"# TYPE queue_depth gauge\nqueue_depth {VALUE['v']}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def status(headroom, sock):
    out = subprocess.run([headroom, "status", "--json", "--socket", sock], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--headroom", required=True)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--interval", default="1s")
    args = ap.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gauge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="headroom-reaction-")
    sock = os.path.join(tmp, "h.sock")
    cfg = os.path.join(tmp, "h.toml")
    with open(cfg, "w") as f:
        f.write(
            f'[agent]\nstate_directory = "{tmp}/state"\nsocket = "{sock}"\ninterval = "{args.interval}"\n'
            f'[sources.app]\nendpoint = "http://127.0.0.1:{server.server_address[1]}/metrics"\n'
            'gauges = ["queue_depth"]\n[model]\ndemand = "app.queue_depth"\ncapacity = 10.0\n'
        )
    agent = subprocess.Popen([args.headroom, "agent", "--config", cfg],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = []
    try:
        deadline = time.monotonic() + 30
        while status(args.headroom, sock) is None:
            if time.monotonic() > deadline:
                raise SystemExit("agent did not start")
            time.sleep(0.1)
        for trial in range(args.trials):
            VALUE["v"] = 2.0
            deadline = time.monotonic() + 60
            while True:  # back to hold on low demand
                s = status(args.headroom, sock)
                d = s and s.get("decision")
                if d and d["action"] == "hold" and d["demand_now"] < 5:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("agent did not return to hold")
                time.sleep(0.05)
            time.sleep(1.5)
            VALUE["v"] = 50.0
            step = time.monotonic()
            while True:
                s = status(args.headroom, sock)
                d = s and s.get("decision")
                if d and d["action"] == "scale_out" and d["demand_now"] >= 50:
                    took = time.monotonic() - step
                    break
                if time.monotonic() - step > 30:
                    raise SystemExit("no scale-out within 30 s")
                time.sleep(0.02)
            times.append(took)
            print(f"trial {trial + 1}: load step to scale-out decision {took * 1000:.0f} ms")
        print(f"\nreaction time over {len(times)} trials at {args.interval} cadence: "
              f"median {statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms (goal <= 2000 ms)")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
