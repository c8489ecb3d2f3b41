# Auth gateway container image.
#
#   docker build -t auth-gateway .
#   docker run --rm -p 8080:8080 -e GATEWAY_CONFIG=/etc/gateway/config.yaml \
#     -v "$PWD/config.yaml:/etc/gateway/config.yaml:ro" auth-gateway
#
# Two stages: the builder makes a virtualenv with the package and its `fast` extra (uvloop); the final
# stage copies only that virtualenv onto a clean slim base, so no build tool, pip cache or source tree
# ships. Every dependency has binary wheels for CPython 3.11 on amd64 and arm64, so the builder needs no
# compiler either; if one ever stops shipping a wheel, add build tools to the builder stage only.
# tests/deploy/test_dockerfile.py checks that this file matches the package (command, port, user, files).

FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

WORKDIR /src
# Only what `pip install .` reads: the project metadata, the README it names, and the package.
COPY pyproject.toml README.md ./
COPY gateway/ ./gateway/
RUN /opt/venv/bin/pip install --no-cache-dir ".[fast]"


FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="auth-gateway" \
      org.opencontainers.image.description="One normalized /auth/<provider> API over vendor login calls"

# A fixed numeric uid/gid, so Kubernetes can check runAsNonRoot and the Deployment can name the same ids.
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin gateway

# Same path as in the builder: the venv's scripts and its python symlink point there.
COPY --from=builder /opt/venv /opt/venv

# GATEWAY_HOST: the service listens on loopback by default; in a container it must listen on all
# interfaces. PYTHONDONTWRITEBYTECODE: the root filesystem is read-only under Kubernetes.
ENV PATH="/opt/venv/bin:${PATH}" \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app
USER 10001:10001
EXPOSE 8080

# slim has no curl or wget: probe with the interpreter that is already there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3).status == 200 else 1)"]

ENTRYPOINT ["python", "-m", "gateway"]
CMD ["serve"]
