#!/usr/bin/env bash
# The agent's cost of delivering to every coordinator replica: two release agents side by side
# for DURATION seconds (default 120), one delivering to 1 dry-run coordinator and one to 3, each
# sampling and deciding once a second; prints both on-CPU totals (every thread, from
# /proc/PID/task/*/schedstat) and their ratio.
#
#     cargo build --release --workspace --bins && benches/overhead/destinations.sh [DURATION]

set -euo pipefail
# shellcheck source=benches/overhead/common.sh
. "$(dirname "$0")/common.sh"
DUR=${1:-120}
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release}
D=$(mktemp -d)
printf 'ha-overhead-token-0123456789abcdef' > $D/token; chmod 600 $D/token
pids=()
for i in 1 2 3; do
  port=$((17170+i))
  HEADROOM_LOG=warn $BIN/headroom-coordinator coordinator --listen 127.0.0.1:$port --state $D/c$i.db --token-file $D/token >/dev/null 2>$D/c$i.log &
  pids+=($!)
done
sleep 2
mk() { # name urls
  mkdir -p $D/$1
  { agent_toml "$D" "$1"; cat <<TOML; } > $D/$1/h.toml
[coordinator]
urls = [$2]
token_file = "$D/token"
TOML
}
mk one '"http://127.0.0.1:17171"'
mk three '"http://127.0.0.1:17171", "http://127.0.0.1:17172", "http://127.0.0.1:17173"'
HEADROOM_LOG=warn $BIN/headroom agent --config $D/one/h.toml 2>$D/one.log & a1=$!
HEADROOM_LOG=warn $BIN/headroom agent --config $D/three/h.toml 2>$D/three.log & a3=$!
sleep 10
b1=$(cpu $a1); b3=$(cpu $a3)
sleep $DUR
e1=$(cpu $a1); e3=$(cpu $a3)
python3 -c "
o=($e1-$b1)/1e9; t=($e3-$b3)/1e9
print(f'agent cpu over $DUR s: one destination {o:.3f} s, three destinations {t:.3f} s, ratio {t/o:.3f}')"
kill $a1 $a3 "${pids[@]}"; wait 2>/dev/null || true
rm -rf $D
