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
read -r o t < <(side_by_side "$D" one three "$DUR")
python3 -c "
o, t = $o, $t
print(f'agent cpu over $DUR s: one destination {o:.3f} s, three destinations {t:.3f} s, ratio {t/o:.3f}')"
kill "${pids[@]}"; wait 2>/dev/null || true
rm -rf $D
