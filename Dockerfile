# kabinet API (and, with another command, its workers). Slim, non-root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kabinet kabinet
COPY models models
COPY schema schema
COPY resolvers resolvers
COPY workers workers
RUN pip install . && useradd --create-home --uid 10001 kabinet && mkdir /data && chown kabinet /data

USER kabinet
ENV KABINET_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["kabinet", "serve", "--host", "0.0.0.0", "--port", "8000"]
