#!/bin/sh
# The process entry points of HaloBestie: the image's ENTRYPOINT (Dockerfile), each compose service's
# command, `make smoke` (scripts/smoke.py) and `make run` (scripts/dev_up.py) all start processes
# through this one file, so what the smoke test boots is exactly what the containers run.
#
#   entrypoint.sh web            ASGI server (uvicorn): REST, WebSocket, admin, static files
#   entrypoint.sh worker         Celery worker (timed work, sweeps)
#   entrypoint.sh beat           Celery beat (the periodic schedule; run exactly one)
#   entrypoint.sh release        migrations + beat schedule sync (once per deploy, before the others)
#   entrypoint.sh collectstatic  collect static files into STATIC_ROOT (image build)
#   entrypoint.sh manage <command> ...   a manage.py command (e.g. create_ops_admin, create_mitra)
#   entrypoint.sh healthcheck web|worker|beat
#   entrypoint.sh <anything else> runs it as given (e.g. python manage.py create_ops_admin ...)
#
# Environment: PYTHON (default: python), HOST (0.0.0.0), PORT (8000), WEB_CONCURRENCY (2 uvicorn
# workers), WORKER_CONCURRENCY (2 Celery processes), LOG_LEVEL (info).
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
CELERY_LOG_LEVEL="$(printf '%s' "${LOG_LEVEL:-info}" | tr '[:upper:]' '[:lower:]')"

case "${1:-web}" in
  web)
    exec "$PYTHON" -m uvicorn halobestie.asgi:application \
      --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" \
      --lifespan auto --no-server-header
    ;;
  worker)
    exec "$PYTHON" -m celery -A halobestie worker -l "$CELERY_LOG_LEVEL" \
      --concurrency "${WORKER_CONCURRENCY:-2}"
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
    exec "$PYTHON" scripts/healthcheck.py "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
