# The Tripwire image: the README's install steps (make install), then a worker.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY service ./service
COPY topologies ./topologies
RUN make install

ENV PATH="/app/.venv/bin:${PATH}" \
    TRIPWIRE_DATA_DIR=/var/lib/tripwire \
    TRIPWIRE_WORKER_WEB_HOST=0.0.0.0
VOLUME ["/var/lib/tripwire"]
EXPOSE 6066
ENTRYPOINT ["tripwire"]
CMD ["worker"]
