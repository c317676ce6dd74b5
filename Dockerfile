# One image for the operator, the JobManager and the TaskManagers (DESIGN.md sections 2 and 9).
#
# The build needs no network: `make image` fills build/wheelhouse with `pip wheel` on the host,
# and the image installs from it with `pip install --no-index`. BASE_IMAGE is any Debian-like
# image with Python 3.11+ (default the public slim image; a base made with debootstrap and
# `docker import` works where nothing can be pulled).
#
# Health: Kubernetes probes the pods (the operator renders the JobManager's /readyz and /healthz on
# 8081 and the TaskManager's /healthz on 8082; the chart probes the operator's kopf /healthz on
# 8080); HEALTHCHECK below does the same for `docker run`, by role (STREAMJOB_HEALTH_URL).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONSAFEPATH=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY build/wheelhouse/ /tmp/wheelhouse/
RUN python3 -m pip install --no-index --find-links=/tmp/wheelhouse "streamjob[operator]" \
    && rm -rf /tmp/wheelhouse \
    && (getent group streamjob || groupadd --gid 10001 streamjob) \
    && (getent passwd streamjob || useradd --uid 10001 --gid 10001 --no-create-home \
        --home-dir /opt/streamjob --shell /usr/sbin/nologin streamjob)

WORKDIR /opt/streamjob
COPY --chown=10001:10001 examples/ /opt/streamjob/examples/
COPY scripts/healthcheck.py /usr/local/bin/streamjob-healthcheck

USER 10001:10001
EXPOSE 8080 8081 8082 6121

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "/usr/local/bin/streamjob-healthcheck"]

ENTRYPOINT ["streamjob"]
CMD ["--help"]
