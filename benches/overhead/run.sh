#!/usr/bin/env bash
# Overhead of headroom next to its peers, measured side by side in one run.
#
#   benches/overhead/run.sh [SECONDS]        (default 300; run as root on a fresh machine)
#
# Installs the peers (Debian's collectd-core and prometheus-node-exporter), builds the agent as
# shipped (the size-optimised `agent` profile), then runs for the same duration at one sample a second:
#   headroom agent (all sources, forecasting, SQLite history and decisions on),
#   prometheus-node-exporter with its default collectors, scraped once a second,
#   prometheus-node-exporter with five collectors (cpu, diskstats, netdev, loadavg, meminfo), scraped once a second,
#   collectd at Interval 1 with the cpu, disk, interface, load and memory plugins.
# CPU is each process's on-CPU time (all threads, /proc/PID/task/*/schedstat, nanoseconds) over
# the window, as % of one core; RSS is sampled every second (mean and max).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-300}
if ! command -v collectd >/dev/null || ! command -v prometheus-node-exporter >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends collectd-core prometheus-node-exporter >/dev/null
fi
cargo build --locked --profile agent -p headroom
exec python3 benches/overhead/measure.py --duration "$duration" --headroom target/agent/headroom
