# One image for every ticktape service; the compose file picks the service by command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
# The compose file's volumes mount on these directories; a new named volume takes their owner and
# mode, so the credentials (bus-init writes them as ticktape) start private to ticktape.
RUN pip install --no-cache-dir . && useradd --create-home ticktape \
    && install -d -o ticktape -g ticktape -m 0755 /var/lib/ticktape /var/lib/ticktape/nats \
    && install -d -o ticktape -g ticktape -m 0700 /var/lib/ticktape/creds /etc/nats-ticktape
USER ticktape
ENV PYTHONUNBUFFERED=1
CMD ["python", "-m", "ticktape", "--help"]
