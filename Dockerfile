# syntax=docker/dockerfile:1
# deskstream: one image for all four services; the command picks the service:
#   docker run deskstream:local                 -> deskstream run intake (the default CMD)
#   docker run deskstream:local run router      -> the router's worker
#   docker run deskstream:local topics          -> create the topics, then exit
# docker-compose.yml runs it that way; see deploy/README.md.

# Pinned to a patch release; bump it (and rebuild) for Python and Debian security fixes.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------------------
# Stage 1: a virtual environment with the pinned dependencies and deskstream.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A C compiler for the one dependency without a wheel on every platform:
# faust-streaming 0.15.3 has manylinux x86_64 wheels but only an sdist for arm64,
# where its Cython extensions are compiled. Only this stage has it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a source change does not
# reinstall them (this layer stays cached until pyproject.toml changes). Every package,
# pip and setuptools included, at the version requirements.lock pins: the image runs
# what `make audit` audited, not whatever PyPI holds on the day of the build.
COPY pyproject.toml README.md requirements.lock ./
RUN pip install -c requirements.lock pip setuptools \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -c requirements.lock -r /tmp/requirements.txt

# Why an editable install of /app rather than a wheel: deskstream reads files
# relative to the source tree, not the installed package: schemas/ next to the
# deskstream package (deskstream/contract.py: SCHEMA_DIR = <package>/../schemas),
# and services/router/rules/default.json, which the wheel's package data does not
# carry. A wheel in site-packages would lose both. `pip install -e` keeps the code
# where it is (/app) and still installs the `deskstream` console script; the venv
# only records the absolute path /app, which the final stage reproduces exactly.
COPY deskstream/ deskstream/
COPY services/ services/
COPY schemas/ schemas/
RUN pip install --no-deps -e /app \
 && deskstream --help > /dev/null

# ---------------------------------------------------------------------------
# Stage 2: what runs: the interpreter, the venv and the source, as a non-root user.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="deskstream" \
      org.opencontainers.image.description="Omnichannel support intake pipeline on Apache Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0 \
    DESKSTREAM_DATA_DIR=/data

RUN groupadd --system --gid 10001 deskstream \
 && useradd --system --uid 10001 --gid deskstream --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin deskstream \
 && mkdir -p /data \
 && chown deskstream:deskstream /data

COPY --from=build /opt/venv /opt/venv

# Only what runs: the packages (with intake's static page, the router's roster and
# rules) and the event schemas. Root-owned, so the service cannot change its code.
WORKDIR /app
COPY deskstream/ deskstream/
COPY services/ services/
COPY schemas/ schemas/
# Compiled here because the non-root user cannot write __pycache__ into /app.
RUN python -m compileall -q deskstream services

USER deskstream:deskstream

# intake 8080, router 8081, notifier 8082, feedback 8083 (one per container).
EXPOSE 8080 8081 8082 8083

# No image-level HEALTHCHECK: the port to probe depends on the service chosen by
# the command, so docker-compose.yml sets one per service (GET /readyz).

ENTRYPOINT ["deskstream"]
CMD ["run", "intake"]
