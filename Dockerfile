# syntax=docker/dockerfile:1

# One image per role, all from this file: docker-bake.hcl builds each role's
# target. Every role runs the same binary, `faas`; the image only chooses the
# subcommand and the port.

ARG GO_VERSION=1.26.8
# The build and the runtime must be the same Debian release: faas links the
# release's libzmq.
ARG DEBIAN_RELEASE=bookworm

FROM golang:${GO_VERSION}-${DEBIAN_RELEASE} AS build
# Keep downloaded packages in the cache mount instead of deleting them.
RUN rm -f /etc/apt/apt.conf.d/docker-clean
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update \
    && apt-get install -y --no-install-recommends libzmq3-dev pkg-config
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/faas .

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libzmq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 faas \
    && useradd --system --uid 10001 --gid faas --home-dir /home/faas \
       --create-home --shell /usr/sbin/nologin faas
COPY --from=build /out/faas /usr/local/bin/faas
USER 10001:10001
WORKDIR /home/faas
ENTRYPOINT ["/usr/local/bin/faas"]

# Ports above 1024: the user is not root. Kumori's connectors map the
# service's HTTP port 80 to the frontend's 8080.
FROM runtime AS frontend
ENV PORT=8080
EXPOSE 8080
CMD ["frontend"]

FROM runtime AS dbmanager
ENV PORT=27444
EXPOSE 27444
CMD ["dbmanager"]

FROM runtime AS jqmanager
ENV PORT=27445
EXPOSE 27445
CMD ["jqmanager"]

# Workers only open connections.
FROM runtime AS worker
CMD ["worker"]

# kumorictl is not in any package registry we use, so the scaler image takes
# it from a build context named "kumorictl" (a directory holding the
# executable; docker-bake.hcl passes KUMORICTL_DIR). Without one this stage
# is empty and the image has no kumorictl.
FROM scratch AS kumorictl

# The scaler rewrites the worker count in its own copy of the deployment
# module and runs kumorictl on it, so the module is part of the image and
# writable by the scaler's user.
FROM runtime AS scaler
COPY --from=kumorictl --chmod=0755 /kumorictl* /usr/local/bin/
COPY --chown=10001:10001 cue.mod /opt/faas/kumori/cue.mod
COPY --chown=10001:10001 deploy /opt/faas/kumori/deploy
ENV FAAS_SCALER_BACKEND=kumori \
    FAAS_KUMORI_DIR=/opt/faas/kumori/deploy
CMD ["scaler"]
