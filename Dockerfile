FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY translators ./translators
COPY gateway ./gateway
# Only examples: mount your own partner folders at /app/partners (the default
# partners_dir); the service refuses to start without any (docs/operations.md).
COPY examples/partners ./examples/partners
RUN pip install --no-cache-dir . && useradd --system --home /app gateway && mkdir -p /app/var /app/partners && chown gateway /app/var
USER gateway
EXPOSE 8080
ENV GATEWAY_SERVER__HOST=0.0.0.0
CMD ["gateway", "serve"]
