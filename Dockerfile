# The gateway image (issue #6): `docker build -t peteollama-gateway .`
#
# Only the gateway's own dependencies (`pip install .`, never the [worker] extra: the gateway
# imports gpu_worker.contract and gpu_worker.formats, pure Python, and never runpod). Runs as a
# non-root user; `python -m app` reads its settings from the environment (README's table) and
# honours PORT and WEB_CONCURRENCY. Give `docker stop` more time than SHUTDOWN_GRACE_S (default
# 15 s) so turns in flight finish: `docker stop -t 20`, or `stop_grace_period: 20s` in compose.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY gpu_worker/__init__.py gpu_worker/contract.py gpu_worker/formats.py gpu_worker/envconfig.py ./gpu_worker/
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels peteollama \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin pete
WORKDIR /srv
USER pete
EXPOSE 8000
# No curl in the slim image: the probe is Python's standard library.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app"]
