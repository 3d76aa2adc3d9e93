# rollbot's own image: the bot, the Docker CLI and Compose v2. It drives the host's daemon
# through the mounted socket; deploy/docker-compose.yml runs it beside the Engine.
#
#   docker build -t rollbot .
#
# By default it takes python:3.12-slim, docker:28-cli and docker/compose-bin from Docker Hub and
# rollbot's dependencies from PyPI. A closed network passes its own images instead:
#   PYTHON_IMAGE      the runtime (CPython 3.11+, `python3` on PATH; Debian-based, for useradd)
#   BUILDER_IMAGE     where the virtualenv is made: the same Python as PYTHON_IMAGE, with venv and
#                     pip; its pip settings (e.g. ENV PIP_INDEX_URL, or PIP_NO_INDEX=1 with
#                     PIP_FIND_LINKS=/wheelhouse) say where packages come from
#   DOCKER_CLI_IMAGE  has the docker CLI at /usr/local/bin/docker
#   COMPOSE_IMAGE     has the Compose v2 plugin at /docker-compose
# (tests/integration/rollbot_image.py builds it that way, from what this machine has.)
ARG PYTHON_IMAGE=python:3.12-slim
ARG BUILDER_IMAGE=${PYTHON_IMAGE}
ARG DOCKER_CLI_IMAGE=docker:28-cli
ARG COMPOSE_IMAGE=docker/compose-bin:v2.40.3

FROM ${DOCKER_CLI_IMAGE} AS docker-cli
FROM ${COMPOSE_IMAGE} AS compose

FROM ${BUILDER_IMAGE} AS build
RUN python3 -m venv /opt/rollbot
# Dependencies first, from the lock alone (every package pinned with its hash): this layer stays
# cached while only the code changes, and a new release of anything never changes the image.
COPY requirements/runtime.lock /src/requirements/
RUN /opt/rollbot/bin/pip install --no-cache-dir --require-hashes --requirement /src/requirements/runtime.lock
COPY pyproject.toml /src/
COPY README.md /src/
COPY bot /src/bot
COPY handlers /src/handlers
COPY storage /src/storage
# pip and setuptools are only needed to build; the image never installs anything at run time.
RUN /opt/rollbot/bin/pip install --no-cache-dir --no-deps --no-build-isolation /src \
 && /opt/rollbot/bin/pip uninstall --quiet --yes pip setuptools

FROM ${PYTHON_IMAGE}
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=compose /docker-compose /usr/local/lib/docker/cli-plugins/docker-compose
# A fixed, unprivileged uid: deploy/docker-compose.yml adds the host's docker group to it, and
# the Engine's compose and brain folders must be writable by it.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/rollbot --create-home rollbot
COPY --from=build /opt/rollbot /opt/rollbot
# PATH spelled out: an image made with `docker import` has none to extend.
ENV PATH=/opt/rollbot/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/rollbot \
    ROLLBOT_CONFIG=/etc/rollbot/rollbot.yaml \
    DATABASE_URL=sqlite:////var/lib/rollbot/rollbot.db
USER 10001:10001
WORKDIR /var/lib/rollbot
EXPOSE 3000
# GET /healthz of `rollbot serve` (HTTP mode; Socket Mode has no HTTP server to ask). Python is
# already here, so no curl. Docker runs it inside the container, hence 127.0.0.1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]
ENTRYPOINT ["rollbot"]
# 0.0.0.0: inside a container 127.0.0.1 is the container's own loopback, which a published port
# cannot reach. The host decides who may connect (deploy/docker-compose.yml publishes the port
# on the host's 127.0.0.1 for a TLS proxy in front).
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]
