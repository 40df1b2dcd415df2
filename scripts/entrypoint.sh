#!/bin/sh
# The process entry points of HaloBestie: the image's ENTRYPOINT (Dockerfile), each compose service's
# command, `make smoke` (scripts/smoke.py) and `make run` (scripts/dev_up.py) all start processes
# through this one file, so what the smoke test boots is exactly what the containers run.
#
#   entrypoint.sh web            ASGI server (uvicorn): REST, WebSocket, admin, static files
#   entrypoint.sh worker         Celery worker for the queues in WORKER_QUEUES (default: all three)
#   entrypoint.sh worker-clock   Celery worker for the `clock` queue only (warnings, expiries, pairing
#                                deadlines; CLOCK_WORKER_CONCURRENCY processes, default 4)
#   entrypoint.sh worker-tasks   Celery worker for `default` and `sweeps` (webhooks, periodic sweeps)
#   entrypoint.sh beat           Celery beat (the periodic schedule; run exactly one)
#   entrypoint.sh release        migrations + beat schedule sync (once per deploy, before the others)
#   entrypoint.sh collectstatic  collect static files into STATIC_ROOT (image build)
#   entrypoint.sh manage <command> ...   a manage.py command (e.g. create_ops_admin, create_mitra)
#   entrypoint.sh healthcheck web|worker|worker-clock|worker-tasks|beat
#   entrypoint.sh <anything else> runs it as given (e.g. python manage.py create_ops_admin ...)
#
# Environment: PYTHON (default: python), HOST (0.0.0.0), PORT (8000), WEB_CONCURRENCY (2 uvicorn
# workers), WORKER_CONCURRENCY (2 Celery processes), WORKER_QUEUES (clock,default,sweeps), WORKER_NAME
# (the node name's prefix, <name>@<hostname>; celery / clock / tasks), CLOCK_WORKER_CONCURRENCY (4),
# LOG_LEVEL (info), PROMETHEUS_MULTIPROC_DIR (web, worker: emptied at start).
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
CELERY_LOG_LEVEL="$(printf '%s' "${LOG_LEVEL:-info}" | tr '[:upper:]' '[:lower:]')"

# Prometheus multiprocess mode (docs/operations.md "Observability"): the process group's directory
# must be empty at start, or the dead processes of an earlier run would still be counted.
prepare_metrics_dir() {
  if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete   # it may be a mount point: empty it
  fi
}

case "${1:-web}" in
  web)
    prepare_metrics_dir
    exec "$PYTHON" -m uvicorn halobestie.asgi:application \
      --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" \
      --lifespan auto --no-server-header \
      --ws-per-message-deflate "${WS_PER_MESSAGE_DEFLATE:-false}"
    ;;
  worker|worker-clock|worker-tasks)
    # Queues and their workers: docs/reliability.md "Queues". The clock gets its own worker so a
    # backlog of sweeps or webhooks never holds the pool slot a due warning needs.
    case "$1" in
      worker-clock)
        WORKER_QUEUES="clock"; WORKER_NAME="${WORKER_NAME:-clock}"
        WORKER_CONCURRENCY="${CLOCK_WORKER_CONCURRENCY:-4}" ;;
      worker-tasks)
        WORKER_QUEUES="default,sweeps"; WORKER_NAME="${WORKER_NAME:-tasks}" ;;
    esac
    prepare_metrics_dir
    exec "$PYTHON" -m celery -A halobestie worker -l "$CELERY_LOG_LEVEL" \
      --concurrency "${WORKER_CONCURRENCY:-2}" --queues "${WORKER_QUEUES:-clock,default,sweeps}" \
      --hostname "${WORKER_NAME:-celery}@%h"
    ;;
  beat)
    exec "$PYTHON" -m celery -A halobestie beat -l "$CELERY_LOG_LEVEL" \
      --scheduler django_celery_beat.schedulers:DatabaseScheduler
    ;;
  release)
    "$PYTHON" manage.py migrate --noinput
    exec "$PYTHON" manage.py sync_beat_schedule
    ;;
  collectstatic)
    exec "$PYTHON" manage.py collectstatic --noinput
    ;;
  manage)
    shift
    exec "$PYTHON" manage.py "$@"
    ;;
  healthcheck)
    shift
    # worker-clock / worker-tasks: the same ping, addressed to that role's node name.
    case "${1:-}" in
      worker-clock) shift; WORKER_NAME="${WORKER_NAME:-clock}" exec "$PYTHON" scripts/healthcheck.py worker "$@" ;;
      worker-tasks) shift; WORKER_NAME="${WORKER_NAME:-tasks}" exec "$PYTHON" scripts/healthcheck.py worker "$@" ;;
    esac
    exec "$PYTHON" scripts/healthcheck.py "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
