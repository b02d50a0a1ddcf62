# The service image: gRPC on 50051, REST on 8080, against an external PostgreSQL
# (DATABASE_URL). `python -m service` is PID 1 (exec form), so SIGTERM reaches it: health
# goes NOT_SERVING, in-flight calls get SHUTDOWN_GRACE_SECONDS, the worker stops at a task
# boundary. It runs as an unprivileged user.
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin invoicing \
    && mkdir -p /data && chown invoicing /data
WORKDIR /app

# Dependencies first (a layer that changes only with pyproject.toml).
COPY pyproject.toml README.md ./
COPY service/__init__.py service/__init__.py
RUN pip install --no-cache-dir --disable-pip-version-check . \
    && pip uninstall -y --disable-pip-version-check invoicing-service

COPY service service
COPY generated generated
COPY migrations migrations
COPY protos protos

ENV PYTHONPATH=/app:/app/generated \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/data \
    GRPC_HOST=0.0.0.0 \
    GATEWAY_HOST=0.0.0.0

USER invoicing
EXPOSE 50051 8080
HEALTHCHECK --interval=10s --timeout=3s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz').status != 200)"
ENTRYPOINT ["python", "-m", "service"]
