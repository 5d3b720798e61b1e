#!/usr/bin/env bash
# Starts the local system in the foreground; Ctrl-C (or SIGTERM) stops everything cleanly.
# For now: the dev broker. Each service issue adds its process here.
#   CRM_DATA_DIR   data folder (default ./data); survives restarts
#   CRM_BROKERS    mock Kafka brokers (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA_DIR=${CRM_DATA_DIR:-data}
mkdir -p "$DATA_DIR"

pids=()
stop() {
  trap - INT TERM
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM

rm -f "$DATA_DIR/broker.addr"
"$BUILD_DIR/tools/devbroker/devbroker" --brokers "${CRM_BROKERS:-1}" \
  --addr-file "$DATA_DIR/broker.addr" --control-file "$DATA_DIR/broker.control" &
pids+=($!)
for _ in $(seq 100); do [ -s "$DATA_DIR/broker.addr" ] && break; sleep 0.1; done
[ -s "$DATA_DIR/broker.addr" ] || { echo "dev broker did not start" >&2; stop; exit 1; }

cat <<MSG

CRM local system is up.
  Kafka (dev broker):  $(cat "$DATA_DIR/broker.addr")   (address in $DATA_DIR/broker.addr)
  Broker control port: $(cat "$DATA_DIR/broker.control" 2>/dev/null)  (lines: status | down all | up all | rtt all <ms>)
  Read a topic:        kcat -C -b \$(cat $DATA_DIR/broker.addr) -t crm.contact.events.v1 -e
Press Ctrl-C to stop.
MSG
wait
