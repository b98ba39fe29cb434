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

# Run stage: only the venv, a non-root user and the data volume.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 ptebot && mkdir /data && chown ptebot /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PTEBOT_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER ptebot
VOLUME ["/data"]
CMD ["pte-bot", "run"]
