#!/usr/bin/env bash
# Make sure a Docker engine answers, for `make image` and the container tests. If `docker
# info` fails: as root, install Debian's docker.io when dockerd is missing, then start
# dockerd in the background (log: $DOCKERD_LOG). Exit 0 once the engine answers; otherwise
# exit 1 with the reason on stderr.
set -uo pipefail

LOG=${DOCKERD_LOG:-/var/tmp/batchml-dockerd.log}

docker info >/dev/null 2>&1 && exit 0

cannot() {
  echo "Docker cannot start on this machine: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || cannot "no engine answers and only root can start one here"
if ! command -v dockerd >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || cannot "no dockerd, and no apt-get to install Debian's docker.io"
  echo "installing Debian's docker.io" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >"$LOG" 2>&1 ||
    cannot "apt-get install docker.io failed: $(tail -3 "$LOG")"
fi

echo "starting dockerd (log: $LOG)" >&2
setsid nohup dockerd >"$LOG" 2>&1 </dev/null &
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  kill -0 $! 2>/dev/null || cannot "dockerd exited: $(tail -5 "$LOG")"
  sleep 0.5
done
cannot "dockerd did not answer within 30 s: $(tail -5 "$LOG")"
