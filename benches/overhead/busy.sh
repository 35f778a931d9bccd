#!/usr/bin/env bash
# The agent's cost of the busy figure (`[coordinator] busy = "connections"`: one sock_diag dump
# of established TCP sockets per decision): two release agents side by side for DURATION
# seconds (default 120), sampling and deciding once a second and delivering to one dry-run
# coordinator, one with the figure and one without, while CONNS (default 200) connections stay
# open on a listening port of this host; prints both on-CPU totals (every thread, from
# /proc/PID/task/*/schedstat) and their ratio.
#
#     cargo build --release --workspace --bins && benches/overhead/busy.sh [DURATION] [CONNS]

set -euo pipefail
# shellcheck source=benches/overhead/common.sh
. "$(dirname "$0")/common.sh"
DUR=${1:-120}
CONNS=${2:-200}
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
D=$(mktemp -d)
printf 'busy-overhead-token-0123456789abcdef' > $D/token; chmod 600 $D/token
HEADROOM_LOG=warn $BIN/headroom-coordinator coordinator --listen 127.0.0.1:17181 --state $D/c.db --token-file $D/token >/dev/null 2>$D/c.log & c=$!
# CONNS connections held open on a listener of this host, for DURATION + 30 s at most.
python3 - "$CONNS" "$((DUR + 30))" <<'PY' & h=$!
import socket, sys, time
n, life = int(sys.argv[1]), float(sys.argv[2])
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(n)
cs = [socket.create_connection(l.getsockname()) for _ in range(n)]
ss = [l.accept()[0] for _ in range(n)]
time.sleep(life)
PY
sleep 2
mk() { # name busy
  mkdir -p $D/$1
  { agent_toml "$D" "$1"; cat <<TOML; } > $D/$1/h.toml
[coordinator]
urls = ["http://127.0.0.1:17181"]
token_file = "$D/token"
busy = "$2"
TOML
}
mk off ''
mk on 'connections'
read -r o t < <(side_by_side "$D" off on "$DUR")
python3 -c "
o, t = $o, $t
print(f'agent cpu over $DUR s with $CONNS connections open: busy off {o:.3f} s, busy = connections {t:.3f} s, ratio {t/o:.3f}')"
kill $c $h; wait 2>/dev/null || true
rm -rf $D
