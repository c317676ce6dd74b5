# One image for the operator, the JobManager and the TaskManagers (DESIGN.md sections 2 and 9).
#
# The build needs no network: `make image` fills build/wheelhouse with `pip wheel` on the host,
# and the image installs from it with `pip install --no-index`. BASE_IMAGE is any Debian-like
# image with Python 3.11+ (default the public slim image; a base made with debootstrap and
# `docker import` works where nothing can be pulled: scripts/docker-setup.sh makes one). The
# package goes into a virtual environment (/opt/venv), so a base whose Python is Debian's
# /usr/bin/python3 (externally managed, PEP 668) works like the slim image's /usr/local one.
#
# Health: Kubernetes probes the pods (the operator renders the JobManager's /readyz and /healthz on
# 8081 and the TaskManager's /healthz on 8082; the chart probes the operator's kopf /healthz on
# 8080); HEALTHCHECK below does the same for `docker run`, by role (STREAMJOB_HEALTH_URL).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# PATH in full: an imported base image may have no PATH to extend
ENV PYTHONSAFEPATH=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

COPY build/wheelhouse/ /tmp/wheelhouse/
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install -q --no-index --find-links=/tmp/wheelhouse \
        "streamjob[operator]" \
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
