# kabinet API (and, with another command, its workers). Slim, non-root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Dependencies first, from the locks with their hashes (`make lock`): a code change reuses this layer,
# and the image gets the very versions the tests ran (requirements/runtime.lock: no test extra).
COPY requirements/build.lock requirements/runtime.lock requirements/
RUN pip install --require-hashes -r requirements/build.lock \
 && pip install --require-hashes -r requirements/runtime.lock
# Then kabinet itself: every package pyproject.toml lists (tests/test_lock.py checks this list), built
# with the locked setuptools, its dependencies already there.
COPY pyproject.toml README.md ./
COPY foundation foundation
COPY events events
COPY kabinet kabinet
COPY models models
COPY schema schema
COPY resolvers resolvers
COPY workers workers
COPY cluster_agent cluster_agent
RUN pip install --no-deps --no-build-isolation . && rm -rf build *.egg-info \
 && useradd --create-home --uid 10001 kabinet && mkdir /data && chown kabinet /data

USER kabinet
ENV KABINET_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["kabinet", "serve", "--host", "0.0.0.0", "--port", "8000"]
