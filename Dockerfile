# syntax=docker/dockerfile:1
# clevertap-consumer image: `docker build -t clevertap-consumer .`
#
# Stage 1 builds wheels for the project and every dependency; stage 2 installs them without a
# compiler or network, runs as a non-root user and writes nothing outside /tmp, so it runs
# under Kubernetes' restricted Pod Security Standard with readOnlyRootFilesystem.
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz on METRICS_PORT (docker-compose.yml
# declares its own healthcheck).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Optional extras baked into the image, e.g. `--build-arg EXTRAS=msk` for AWS MSK IAM login.
ARG EXTRAS=""

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
# Dependencies exactly as locked (versions and hashes), then the project without dependencies.
RUN pip wheel --wheel-dir /wheels --require-hashes -r "requirements${EXTRAS:+-$EXTRAS}.lock" \
    && pip wheel --wheel-dir /wheels --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
ARG PYTHON_IMAGE
ARG EXTRAS
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="clevertap-consumer" \
      org.opencontainers.image.description="Kafka consumer that delivers RudderStack/Segment-spec analytics events to CleverTap, at least once." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# Unbuffered logs straight to stdout; no .pyc writes at run time (pip compiled them at build
# time); HOME in the writable /tmp for any library that wants a cache directory.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/tmp

RUN groupadd --system --gid 10001 clevertap \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin clevertap

# The wheels are bind-mounted from stage 1, so they never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "clevertap-consumer${EXTRAS:+[$EXTRAS]}" \
    && clevertap-consumer --version

WORKDIR /app
USER 10001:10001
EXPOSE 9100
STOPSIGNAL SIGTERM
# Exec form: the Python process is PID 1 (or tini's child with `docker run --init`) and gets
# SIGTERM directly, so it drains in-flight deliveries and commits before exiting.
ENTRYPOINT ["clevertap-consumer"]
CMD ["run"]
