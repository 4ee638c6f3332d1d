# syntax=docker/dockerfile:1
# A Radicale for compose's "try" profile only (docs/operating.md, "Trying it"); the syncd
# image (deploy/Dockerfile) holds the service alone. compose builds it:
#   docker compose --profile try up -d
# Same user id as the syncd image, so a radicale-data volume made by an older image stays
# readable. tests/integration/test_lab_package.py lints it and checks the version range
# against lab/pyproject.toml (what `syncd demo` and the tests run).

ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN pip install --no-compile "radicale>=3.2,<4" \
 && groupadd --system --gid 10001 radicale \
 && useradd --system --uid 10001 --gid radicale --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin radicale \
 && install -d -o radicale -g radicale -m 0750 /var/lib/syncd
USER 10001:10001
EXPOSE 5232
ENTRYPOINT ["radicale"]
