# HaloBestie backend image: one image, four roles (web, worker, beat, release) chosen by the command.
# Entry point and commands: scripts/entrypoint.sh (the same file `make smoke` boots the system with).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=halobestie.settings.production \
    STATIC_ROOT=/app/.static \
    PORT=8000

WORKDIR /app

# The runtime lock only (no dev tools), every package checked against its hash.
COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt

# The code stays owned by root and read-only for the service user.
COPY . .
# Static files (admin, API docs) are collected at build time, hashed and compressed, and served by
# the app itself (WhiteNoise). Production settings insist on secrets even here: these build-only
# values are used for this step alone and never reach a running container.
RUN DJANGO_SECRET_KEY=collectstatic-build-only-not-a-secret-0000 \
    AUTH_JWT_SECRET=collectstatic-build-only-not-a-secret-0000 \
    sh scripts/entrypoint.sh collectstatic \
 && useradd --system --create-home --uid 10001 --shell /usr/sbin/nologin halobestie

USER halobestie
EXPOSE 8000

# The web role's check; compose gives the worker and beat services their own.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/app/scripts/entrypoint.sh", "healthcheck", "web"]

ENTRYPOINT ["/app/scripts/entrypoint.sh"]
CMD ["web"]
