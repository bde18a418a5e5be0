# aksid for an in-cluster nightly run (deploy/cronjob.yaml): the package and its console script, nothing else.
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY aksid ./aksid
COPY suites ./suites
COPY fixtures ./fixtures
COPY deploy ./deploy
RUN pip install --no-cache-dir . && rm -rf /src \
    && useradd --uid 65532 --user-group --create-home aksid

USER 65532
WORKDIR /home/aksid
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["aksid", "run"]
