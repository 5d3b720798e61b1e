#!/usr/bin/env bash
# Starts the local system in the foreground: the dev broker, then every service built so far.
# Ctrl-C (or SIGTERM) stops everything cleanly. Data survives restarts.
#   CRM_DATA_DIR          data folder (default ./data)
#   CRM_BROKERS           mock Kafka brokers (default 1)
#   CRM_JWT_HS256_SECRET  token secret (default: generated once into $CRM_DATA_DIR/jwt.secret)
#   CRM_CONTACT_PORT / CRM_CONTACT_METRICS_PORT   (default 7001 / 9101)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DATA_DIR=${CRM_DATA_DIR:-data}
CRMCTL="$BUILD_DIR/tools/crmctl/crmctl"
mkdir -p "$DATA_DIR"

if [ -z "${CRM_JWT_HS256_SECRET:-}" ]; then
  [ -s "$DATA_DIR/jwt.secret" ] || (umask 077 && openssl rand -hex 32 > "$DATA_DIR/jwt.secret")
  CRM_JWT_HS256_SECRET=$(cat "$DATA_DIR/jwt.secret")
fi
export CRM_JWT_HS256_SECRET

pids=()
stop() {
  trap - INT TERM
  echo "stopping..."
  # Services first (they flush their relays to the broker), the broker last.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
}
trap stop INT TERM

rm -f "$DATA_DIR/broker.addr"
"$BUILD_DIR/tools/devbroker/devbroker" --brokers "${CRM_BROKERS:-1}" \
  --addr-file "$DATA_DIR/broker.addr" --control-file "$DATA_DIR/broker.control" &
pids+=($!)
for _ in $(seq 100); do [ -s "$DATA_DIR/broker.addr" ] && break; sleep 0.1; done
[ -s "$DATA_DIR/broker.addr" ] || { echo "dev broker did not start" >&2; stop; exit 1; }
BROKER=$(cat "$DATA_DIR/broker.addr")

CONTACT="127.0.0.1:${CRM_CONTACT_PORT:-7001}"
"$BUILD_DIR/services/contact/contact-service" --plaintext --kafka-bootstrap "$BROKER" \
  --grpc-listen "$CONTACT" --metrics-listen "127.0.0.1:${CRM_CONTACT_METRICS_PORT:-9101}" \
  --data-dir "$DATA_DIR/contact" 2>> "$DATA_DIR/contact.log" &
pids+=($!)
for _ in $(seq 100); do "$CRMCTL" health "$CONTACT" --plaintext --timeout 1s >/dev/null 2>&1 && break; sleep 0.1; done
"$CRMCTL" health "$CONTACT" --plaintext --timeout 1s >/dev/null || {
  echo "contact-service did not start; see $DATA_DIR/contact.log" >&2; stop; exit 1; }

TOKEN=$("$CRMCTL" token --sub admin --scopes admin)
cat <<MSG

CRM local system is up.
  Kafka (dev broker):  $BROKER   (address in $DATA_DIR/broker.addr, control port $(cat "$DATA_DIR/broker.control"))
  contact-service:     $CONTACT   metrics http://127.0.0.1:${CRM_CONTACT_METRICS_PORT:-9101}/metrics   log $DATA_DIR/contact.log

Try (an admin token for 12 h is in CRM_TOKEN below):
  export CRM_TOKEN=$TOKEN
  $CRMCTL call $CONTACT --plaintext crm.contact.v1.ContactService/CreateContact '{"contact": {"given_name": "Ada", "emails": ["ada@example.com"]}, "request_id": "demo-1", "channel": "web_form"}'
  $CRMCTL call $CONTACT --plaintext crm.contact.v1.ContactService/ListContacts '{}'
  kcat -C -b $BROKER -t crm.contact.events.v1 -e
Press Ctrl-C to stop.
MSG
wait
