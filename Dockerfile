# One image for every ticktape service; the compose file picks the service by command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
RUN pip install --no-cache-dir . && useradd --create-home ticktape
USER ticktape
ENV PYTHONUNBUFFERED=1
CMD ["python", "-m", "ticktape", "--help"]
