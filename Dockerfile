# The Tripwire image: the README's install step (`make install` on Python 3.11), then
# one entry point for every process: `worker` (default), `api`, `actions`.
FROM python:3.11-slim-bookworm

# make is the README's only prerequisite besides Python, and gcc lets `make install`
# compile the trigger core with mypyc (without it the slower pure-Python core runs);
# Debian's versions of the day are fine for them, so they are not pinned. The user has
# a fixed uid, so volume permissions (Kubernetes fsGroup) can name it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/tripwire --create-home tripwire

WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY service ./service
COPY topologies ./topologies
COPY tools ./tools
RUN make install
USER 10001

# Containers log JSON lines and listen on every interface (probes and Prometheus reach
# the pod's address, not its loopback); a worker's web port then serves only health,
# readiness and metrics openly, and explain only with TRIPWIRE_API_TOKEN, which the
# deployment must set (docs/deploy.md). A worker's state lives on the volume.
ENV PATH="/app/.venv/bin:${PATH}" \
    TRIPWIRE_DATA_DIR=/var/lib/tripwire \
    TRIPWIRE_WORKER_WEB_HOST=0.0.0.0 \
    TRIPWIRE_API_HOST=0.0.0.0 \
    TRIPWIRE_LOG_FORMAT=json
VOLUME ["/var/lib/tripwire"]
# worker web (/metrics, /healthz, /readyz; /explain/ with the token), action worker web, API
EXPOSE 6066 6067 4300
ENTRYPOINT ["tripwire"]
CMD ["worker"]
