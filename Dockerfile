# Semantic Adapter Gateway: `gateway serve` in a small, non-root image that runs with a read-only root.
#
#   docker build -t semantic-adapter-gateway .
#   docker run --read-only --tmpfs /tmp -p 8080:8080 -v "$PWD/deploy/config:/config:ro" semantic-adapter-gateway
#
# Mount a folder with gateway.yaml (and the specs, mappings and secret files it names) at /config. The
# config is in charge of the address: to be reachable from outside the container it must say
# `server: {host: 0.0.0.0, port: 8080, auth: ...}` (the gateway refuses a non-loopback address unless
# `server.auth` is stated). Nothing is written at run time except, possibly, temporary files under /tmp
# (mount a tmpfs there when the root filesystem is read-only).
#
# BASE is any image with Python >= 3.11 and its `venv` module, e.g. the official python:3.12-slim or a
# plain Debian with Debian's python3 + python3-venv: the gateway lives in its own virtual environment at
# /opt/gateway (not in site-packages), so it is found whichever Python the base ships.
# Package index settings (a mirror, a CA) are not baked in: pass them with `--build-arg PIP_INDEX_URL=...`
# (any PIP_* variable below) or mount a pip.conf into the build.
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
ARG EXTRAS=redis
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ARG PIP_DEFAULT_TIMEOUT
ARG PIP_FIND_LINKS
ARG PIP_CONSTRAINT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY widgets ./widgets
# The venv's own pip, setuptools and wheel are removed after the install: the final image installs
# nothing, and they are the bulk of what an attacker could use to fetch more code.
RUN python3 -m venv /opt/gateway \
 && /opt/gateway/bin/pip install ".[${EXTRAS}]" \
 && /opt/gateway/bin/python -m compileall -q /opt/gateway/lib \
 && /opt/gateway/bin/pip uninstall -y pip setuptools wheel \
 && /opt/gateway/bin/python -c "import gateway.cli, uvicorn, yaml" \
 && rm -rf /root/.cache

FROM ${BASE}
COPY --from=build /opt/gateway /opt/gateway
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gateway \
 && rm -rf /root/.cache /tmp/* /var/tmp/*
# PYTHONDONTWRITEBYTECODE: the installed modules are compiled already, and a read-only root could not
# take new .pyc files anyway. TMPDIR: the one place anything is written (a tmpfs in Kubernetes).
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    HOME=/tmp
USER 10001:10001
WORKDIR /config
EXPOSE 8080
# Reads the address from the mounted config (0.0.0.0 is checked on 127.0.0.1), so changing the port
# there needs no change here.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-c", "import sys, urllib.request, yaml; s = (yaml.safe_load(open(sys.argv[1])) or {}).get('server') or {}; h = {'0.0.0.0': '127.0.0.1', '::': '::1'}.get(s.get('host', '127.0.0.1'), s.get('host', '127.0.0.1')); h = '[%s]' % h if ':' in h else h; sys.exit(urllib.request.urlopen('http://%s:%s/healthz' % (h, s.get('port', 8080)), timeout=4).status != 200)", "/config/gateway.yaml"]
ENTRYPOINT ["gateway"]
CMD ["serve", "--config", "/config/gateway.yaml"]
