# softserve container image: a build stage running the same scripts as CI, and a runtime stage
# with only the runtime libraries, an unprivileged user, the gRPC and metrics ports, volumes for
# the model and the prompt store, and a health check through the CLI.
#
#   docker build -t softserve .
#   cp deploy/config/tenants.example.json deploy/config/tenants.json   # then put in the digests
#                                         # `softserve keygen` prints (the example's placeholders
#                                         # cannot authenticate; the server refuses to start on them)
#   docker run -p 50051:50051 -p 8080:8080 -p 9090:9090 -v models:/models -v prompts:/var/lib/softserve \
#     -v $PWD/deploy/config/tenants.json:/etc/softserve/tenants.json:ro softserve
#
# GPU images: BASE_IMAGE selects a CUDA base and LIBTORCH_URL a CUDA build of libtorch
# (cxx11 ABI); see docs/DEPLOY.md. Debian's libtorch (the default) is CPU-only.
ARG BASE_IMAGE=debian:12

FROM ${BASE_IMAGE} AS build
ARG LIBTORCH_URL=""
WORKDIR /src
COPY . /src
RUN if [ -n "$LIBTORCH_URL" ]; then \
      apt-get update -q && apt-get install -y -q curl unzip && \
      curl -fsSL "$LIBTORCH_URL" -o /tmp/libtorch.zip && unzip -q /tmp/libtorch.zip -d /opt && \
      SOFTSERVE_SKIP_LIBTORCH=1 bash scripts/docker/build-stage.sh -DCMAKE_PREFIX_PATH=/opt/libtorch; \
    else \
      bash scripts/docker/build-stage.sh; \
    fi

FROM ${BASE_IMAGE} AS runtime
COPY scripts/install-runtime-deps.sh scripts/docker/runtime-stage.sh /tmp/stage/
RUN bash /tmp/stage/runtime-stage.sh && rm -rf /tmp/stage
COPY --from=build /opt/softserve /opt/softserve
ENV PATH=/opt/softserve/bin:$PATH \
    SOFTSERVE_MODEL_DIR=/models/t5-small-random
USER softserve
VOLUME ["/models", "/var/lib/softserve"]
EXPOSE 50051 8080 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["softserve", "--server", "127.0.0.1:50051", "--timeout", "4", "health"]
ENTRYPOINT ["softserve-entrypoint"]
CMD ["--store-dir", "/var/lib/softserve/prompts", "--tenants-file", "/etc/softserve/tenants.json", \
     "--listen", "0.0.0.0:50051", "--http-listen", "0.0.0.0:8080", "--metrics-listen", "0.0.0.0:9090", \
     "--drain-seconds", "25"]
