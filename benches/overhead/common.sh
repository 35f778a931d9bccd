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
