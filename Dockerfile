# CPU serving image for hubcls:  docker build -t hubcls-serve .
#   docker run -p 8866:8866 hubcls-serve -m resnet50_vd_imagenet_ssld            (downloads official weights once)
#   docker run -p 8866:8866 -v "$PWD/output/quickstart:/models/quickstart:ro" hubcls-serve --model-dir /models/quickstart
# Kubernetes probes and the flags: docs/serving.md ("Containers").

# ---- build stage: compile the C++ core into a wheel (portable: runtime CPU dispatch, no -march=native)
FROM python:3.11-slim-bookworm AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake libjpeg62-turbo-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml CMakeLists.txt README.md ./
COPY csrc ./csrc
COPY hubcls ./hubcls
ENV HUBCLS_CUDA=OFF
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- runtime stage: the wheel + Paddle (CPU) + the serve extra, run as a non-root user
FROM python:3.11-slim-bookworm
ARG HUBCLS_VERSION=0.1.0
# libjpeg-turbo for the crop-aware JPEG decode, libgomp for OpenMP (Paddle and the C++ core)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjpeg62-turbo libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin hubcls
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --find-links /wheels "hubcls[cpu,serve]==${HUBCLS_VERSION}" \
    && rm -rf /wheels
USER 10001
WORKDIR /home/hubcls
ENV HUBCLS_HOME=/home/hubcls/.cache/hubcls \
    PYTHONUNBUFFERED=1
EXPOSE 8866
# liveness: the process answers HTTP (model loading is what /health/ready and a startup probe cover)
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8866/health/live', timeout=4)"]
ENTRYPOINT ["hubcls", "serve", "--host", "0.0.0.0", "--port", "8866"]
CMD ["-m", "resnet50_vd_imagenet_ssld"]
