# shellcheck shell=bash
# Shared by the side-by-side agent harnesses (sourced, not run).

# agent_toml DIR NAME: the [agent] table of an agent sampling and deciding once a second, its
# state, socket and host id under DIR/NAME.
agent_toml() {
  cat <<TOML
[agent]
interval = "1s"
decision_interval = "1s"
state_directory = "$1/$2/state"
socket = "$1/$2/h.sock"
host_id = "$2"
group = "default"
TOML
}

# cpu PID: on-CPU nanoseconds of every thread of PID, from /proc/PID/task/*/schedstat.
cpu() {
  local s=0 ns
  for f in /proc/"$1"/task/*/schedstat; do read -r ns _ < "$f"; s=$((s+ns)); done
  echo "$s"
}

# side_by_side DIR A B DURATION: runs the agents configured in DIR/A/h.toml and DIR/B/h.toml
# ($BIN/headroom, logs in DIR/A.log and DIR/B.log) side by side, lets them settle for 10 s, and
# prints each one's on-CPU seconds over the next DURATION seconds, "A B"; then stops both.
side_by_side() {
  HEADROOM_LOG=warn "$BIN"/headroom agent --config "$1/$2/h.toml" 2>"$1/$2.log" & local a=$!
  HEADROOM_LOG=warn "$BIN"/headroom agent --config "$1/$3/h.toml" 2>"$1/$3.log" & local b=$!
  sleep 10
  local ba bb ea eb
  ba=$(cpu $a); bb=$(cpu $b)
  sleep "$4"
  ea=$(cpu $a); eb=$(cpu $b)
  kill $a $b; wait $a $b 2>/dev/null || true
  python3 -c "print(($ea - $ba) / 1e9, ($eb - $bb) / 1e9)"
}
