#!/bin/sh
# The image's command, and the way to start quantdesk anywhere else: migrate, then serve.
#   QUANTDESK_WORKERS  server processes (default 2); each runs a broker worker unless QUANTDESK_BROKER_WORKER=false
#   QUANTDESK_DEMO     true: load the synthetic demo data set and its users when the database is empty
#   PROMETHEUS_MULTIPROC_DIR  emptied here, so /metrics sums this run's workers only
# Extra arguments go to `quantdesk serve` (e.g. --port 9000).
set -eu
quantdesk db upgrade
if [ "${QUANTDESK_DEMO:-false}" = "true" ]; then
  quantdesk demo --if-empty
fi
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
fi
exec quantdesk serve --workers "${QUANTDESK_WORKERS:-2}" "$@"
