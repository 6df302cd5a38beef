# Tollgate: the gateway and its provider emulator in one image.
#   docker build -t tollgate .
#   docker run -p 8080:8080 tollgate                          # gateway + emulator inside, no keys
#   docker run -p 8090:8090 tollgate emulate --host 0.0.0.0   # the emulator alone
# Real providers: -e GATEWAY_SERVER__START_EMULATOR=false
#   -e GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL=https://api.anthropic.com (docs/deploying.md).

# Build: the project and every dependency as wheels; no compiler reaches the runtime image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime: the wheels installed (uvicorn[standard] brings uvloop and httptools), no sources.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 tollgate \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin tollgate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY config/gateway.yaml config/gateway.yaml
# Listen beyond the container's loopback; everything else as config/gateway.yaml says.
ENV GATEWAY_SERVER__HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001
EXPOSE 8080
# /healthz: the process answers. Orchestrators use /readyz for traffic (deploy/k8s).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# SIGTERM drains: in-flight streams get server.shutdown_grace_s (30 s) to finish, so give
# `docker stop` longer than that: docker stop -t 40 (compose: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["gateway"]
CMD ["serve", "--config", "/app/config/gateway.yaml"]
