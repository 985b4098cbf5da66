# syntax=docker/dockerfile:1
#
# One image for both faces of tablekeeper in a cluster:
#   the operator (the default):  tablekeeper operator
#   a table's engine:            tablekeeper engine --data /data --host 0.0.0.0
#
#   docker build -t tablekeeper:0.1.0 .
#
# Not built by CI: the development and CI machines have no Docker daemon. The
# chart's tests check what the Deployment asks of this image (user 65532, a
# read-only root filesystem, writes only to /tmp and to /data volumes).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the wheel, then a virtualenv with it and its dependencies --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# The dependencies with C extensions (httptools, orjson, uvloop, zstandard,
# cryptography) ship binary wheels; --prefer-binary takes them over a newer
# sdist, which would need a compiler the slim image does not have.
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/tablekeeper \
 && /opt/tablekeeper/bin/pip install --prefer-binary /dist/*.whl \
 && /opt/tablekeeper/bin/pip uninstall --yes pip \
 && /opt/tablekeeper/bin/tablekeeper --help > /dev/null

# --- runtime: the slim base (no compilers), the virtualenv, a non-root user --
FROM ${PYTHON_IMAGE}
ARG UID=65532
RUN groupadd --gid ${UID} tablekeeper \
 && useradd --uid ${UID} --gid ${UID} --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin tablekeeper \
 && mkdir /data \
 && chown ${UID}:${UID} /data
COPY --from=build /opt/tablekeeper /opt/tablekeeper
ENV PATH=/opt/tablekeeper/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER ${UID}:${UID}
# 8000: an engine's DynamoDB API; 9090: metrics; 8080: the operator's /healthz.
EXPOSE 8000 9090 8080
ENTRYPOINT ["tablekeeper"]
CMD ["operator"]
