# The production image of the gateway (docs/deployment.md).
#
#   docker build -t gateway .
#   docker run -d --name gateway -p 8080:8080 \
#     -v "$PWD/partners:/app/partners:ro" -v gateway-var:/app/var gateway
#
# Two stages: the build stage installs the locked dependencies (requirements.lock,
# every hash checked) and the gateway into a virtual environment; the runtime
# stage is the base image plus that environment, run as an unprivileged user.
# No partner is baked in: mount yours at /app/partners (the service refuses to
# start without any). The data (SQLite, raw payloads, the API token) lives in
# the volume /app/var. BASE is pinned by digest; a build may pass another base
# with the same Python (3.11) and a python3 that has venv, e.g. a local mirror.
ARG BASE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/gateway
COPY requirements.lock requirements-build.lock /tmp/
RUN /opt/gateway/bin/pip install --require-hashes --no-deps -r /tmp/requirements-build.lock \
 && /opt/gateway/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock
WORKDIR /src
COPY pyproject.toml README.md ./
COPY translators ./translators
COPY as2 ./as2
COPY gateway ./gateway
# Dependencies are already there, exactly as locked: only the gateway itself now.
RUN /opt/gateway/bin/pip install --no-deps --no-build-isolation . \
 && /opt/gateway/bin/pip uninstall -y setuptools wheel packaging

FROM ${BASE}
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home gateway \
 && mkdir -p /app/var /app/partners \
 && chown gateway:gateway /app/var
COPY --from=build /opt/gateway /opt/gateway
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GATEWAY_SERVER__HOST=0.0.0.0 \
    GATEWAY_SERVER__PORT=8080
WORKDIR /app
USER gateway
VOLUME /app/var
EXPOSE 8080
# Ready means: database and raw store usable, partners loaded (GET /readyz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request; port = os.environ.get('GATEWAY_SERVER__PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=4).status == 200 else 1)"]
CMD ["gateway", "serve"]
