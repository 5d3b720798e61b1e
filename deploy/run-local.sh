#!/usr/bin/env bash
# Starts the local system in the foreground: the dev broker, then every service built so far.
# Ctrl-C (or SIGTERM) stops everything cleanly. Data survives restarts.
#   CRM_DATA_DIR          data folder (default ./data)
#   CRM_BROKERS           mock Kafka brokers (default 1)
#   CRM_KAFKA_BOOTSTRAP   use this Kafka instead of starting the dev broker
#   CRM_JWT_HS256_SECRET  token secret (default: generated once into $CRM_DATA_DIR/jwt.secret)
#   CRM_CONTACT_PORT / CRM_CONTACT_METRICS_PORT     (default 7001 / 9101)
#   CRM_ACTIVITY_PORT / CRM_ACTIVITY_METRICS_PORT   (default 7002 / 9102)
#   CRM_PIPELINE_PORT / CRM_PIPELINE_METRICS_PORT   (default 7003 / 9103)
#   CRM_METRICS_PORT / CRM_METRICS_METRICS_PORT     (default 7004 / 9104)
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
# Ctrl-C or SIGTERM: a clean stop, so exit 0 (make does not report an error).
trap 'stop; echo "stopped."; exit 0' INT TERM

if [ -n "${CRM_KAFKA_BOOTSTRAP:-}" ]; then
  BROKER=$CRM_KAFKA_BOOTSTRAP
  BROKER_NOTE="(CRM_KAFKA_BOOTSTRAP)"
else
  rm -f "$DATA_DIR/broker.addr"
  "$BUILD_DIR/tools/devbroker/devbroker" --brokers "${CRM_BROKERS:-1}" \
    --addr-file "$DATA_DIR/broker.addr" --control-file "$DATA_DIR/broker.control" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$DATA_DIR/broker.addr" ] && break; sleep 0.1; done
  [ -s "$DATA_DIR/broker.addr" ] || { echo "dev broker did not start" >&2; stop; exit 1; }
  BROKER=$(cat "$DATA_DIR/broker.addr")
  BROKER_NOTE="(dev broker; address in $DATA_DIR/broker.addr, control port $(cat "$DATA_DIR/broker.control"))"
fi

# start_service <name> <grpc port> <metrics port> [flags...]: starts it, waits for its health.
start_service() {
  local name=$1 address="127.0.0.1:$2" metrics=$3
  shift 3
  "$BUILD_DIR/services/$name/$name-service" --plaintext --kafka-bootstrap "$BROKER" \
    --grpc-listen "$address" --metrics-listen "127.0.0.1:$metrics" \
    --data-dir "$DATA_DIR/$name" "$@" 2>> "$DATA_DIR/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do "$CRMCTL" health "$address" --plaintext --timeout 1s >/dev/null 2>&1 && return; sleep 0.1; done
  echo "$name-service did not start; see $DATA_DIR/$name.log" >&2
  stop
  exit 1
}

CONTACT="127.0.0.1:${CRM_CONTACT_PORT:-7001}"
PIPELINE="127.0.0.1:${CRM_PIPELINE_PORT:-7003}"
ACTIVITY="127.0.0.1:${CRM_ACTIVITY_PORT:-7002}"
start_service contact "${CRM_CONTACT_PORT:-7001}" "${CRM_CONTACT_METRICS_PORT:-9101}"
start_service pipeline "${CRM_PIPELINE_PORT:-7003}" "${CRM_PIPELINE_METRICS_PORT:-9103}" \
  --contact-service "$CONTACT" --contact-service-plaintext
start_service activity "${CRM_ACTIVITY_PORT:-7002}" "${CRM_ACTIVITY_METRICS_PORT:-9102}" \
  --contact-service "$CONTACT" --contact-service-plaintext \
  --pipeline-service "$PIPELINE" --pipeline-service-plaintext
METRICS="127.0.0.1:${CRM_METRICS_PORT:-7004}"
start_service metrics "${CRM_METRICS_PORT:-7004}" "${CRM_METRICS_METRICS_PORT:-9104}" \
  --consumer-session-timeout-ms 4000

TOKEN=$("$CRMCTL" token --sub admin --scopes admin)
cat <<MSG

CRM local system is up.
  Kafka:               $BROKER   $BROKER_NOTE
  contact-service:     $CONTACT   metrics http://127.0.0.1:${CRM_CONTACT_METRICS_PORT:-9101}/metrics   log $DATA_DIR/contact.log
  activity-service:    $ACTIVITY   metrics http://127.0.0.1:${CRM_ACTIVITY_METRICS_PORT:-9102}/metrics   log $DATA_DIR/activity.log
  pipeline-service:    $PIPELINE   metrics http://127.0.0.1:${CRM_PIPELINE_METRICS_PORT:-9103}/metrics   log $DATA_DIR/pipeline.log
  metrics-service:     $METRICS   metrics http://127.0.0.1:${CRM_METRICS_METRICS_PORT:-9104}/metrics   log $DATA_DIR/metrics.log

Try (an admin token for 12 h is in CRM_TOKEN below):
  export CRM_TOKEN=$TOKEN
  $CRMCTL call $CONTACT --plaintext crm.contact.v1.ContactService/CreateContact '{"contact": {"given_name": "Ada", "emails": ["ada@example.com"]}, "request_id": "demo-1", "channel": "web_form"}'
  $CRMCTL call $CONTACT --plaintext crm.contact.v1.ContactService/ListContacts '{}'
  $CRMCTL call $PIPELINE --plaintext crm.pipeline.v1.PipelineService/DefinePipeline '{"pipeline_id": "sales", "display_name": "Sales", "stages": [{"stage_id": "discovery", "probability_bps": 1000}, {"stage_id": "proposal", "probability_bps": 4000}]}'
  $CRMCTL call $PIPELINE --plaintext crm.pipeline.v1.PipelineService/CaptureLead '{"lead": {"source": "webinar", "person": {"given_name": "Grace", "email": "grace@example.com"}, "company": {"display_name": "Hopper Inc"}}, "request_id": "demo-lead-1", "channel": "web_form"}'
  $CRMCTL call $ACTIVITY --plaintext crm.activity.v1.ActivityService/LogActivity '{"activity": {"type": "ACTIVITY_TYPE_CALL", "channel": "phone", "contact_id": "<contact_id from CreateContact>", "subject": "Intro call", "outcome": "connected"}, "request_id": "demo-call-1"}'
  $CRMCTL call $ACTIVITY --plaintext crm.activity.v1.ActivityService/ListTimeline '{"contact_id": "<contact_id>"}'
  $CRMCTL metrics get-adoption-scorecard --address $METRICS --period-kind iso-week
  $CRMCTL metrics get-business-dashboard --address $METRICS --period-kind month
  $CRMCTL contact --help      # every method of a service as a command with flags (-o json for scripts)
  $CRMCTL call $METRICS --plaintext crm.metrics.v1.MetricsService/QueryKpi '{"kpi": "activities_logged", "period_kind": "PERIOD_KIND_ISO_WEEK", "start_time": "2026-11-01T00:00:00Z", "end_time": "2026-12-01T00:00:00Z", "group_by": ["rep", "type"]}'
  kcat -C -b $BROKER -t crm.contact.events.v1 -e
Press Ctrl-C to stop.
MSG
wait
