#!/usr/bin/env bash
# Runs a command against a fresh all-in-one server ($E2EE_SERVER_BIN) on a free loopback
# port, with E2EE_SERVER_URL set; stops the server and removes its data afterwards.
set -euo pipefail
data="$(mktemp -d -t e2ee-server-XXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
RUST_LOG=warn "$E2EE_SERVER_BIN" --listen "127.0.0.1:$port" \
  --keyserver-data-dir "$data" --relay-data-dir "$data" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 $server || { echo "with-server: the server exited" >&2; exit 1; }
  sleep 0.05
done
E2EE_SERVER_URL="http://127.0.0.1:$port" "$@"
