# rollbot's own image: the bot, the Docker CLI and Compose v2 (it drives the host's daemon
# through the mounted socket). Build: docker build -t rollbot .
FROM docker:28-cli AS docker-cli
FROM docker/compose-bin:v2.40.3 AS compose

FROM python:3.12-slim
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=compose /docker-compose /usr/local/lib/docker/cli-plugins/docker-compose
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN pip install --no-cache-dir . \
 && useradd --create-home --uid 10001 rollbot \
 && mkdir -p /var/lib/rollbot && chown rollbot /var/lib/rollbot
USER rollbot
WORKDIR /var/lib/rollbot
ENV DATABASE_URL=sqlite:////var/lib/rollbot/rollbot.db \
    ROLLBOT_CONFIG=/etc/rollbot/rollbot.yaml
ENTRYPOINT ["rollbot"]
CMD ["--help"]
