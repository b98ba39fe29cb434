# syntax=docker/dockerfile:1
# Build stage: build the wheel and install it with its dependencies into a venv.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY conversations ./conversations
COPY locales ./locales
RUN pip install --no-cache-dir --upgrade pip && pip install --no-cache-dir .

# Run stage: only the venv, a non-root user, the data volume and the webhook port.
FROM python:3.11-slim
# /data 0700: a named volume starts as a copy of it (owner and mode), and the program
# keeps what it writes there 0600 (bot/modes.py).
RUN useradd --create-home --uid 10001 ptebot && mkdir -m 0700 /data && chown ptebot /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PTEBOT_DATA_DIR=/data \
    PTEBOT_HTTP_HOST=0.0.0.0 \
    PTEBOT_HTTP_PORT=8080 \
    PYTHONUNBUFFERED=1
USER ptebot
VOLUME ["/data"]
EXPOSE 8080
# No curl in the slim image: Python asks /healthz (200 while the SQLite store answers).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PTEBOT_HTTP_PORT', '8080'), timeout=4)"]
# Webhooks for Telegram and WhatsApp; `pte-bot run` (Telegram long polling) also works.
CMD ["pte-bot", "serve"]
