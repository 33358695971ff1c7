# The image the examples run: ghcr.io/glusterkube/glusterkube:<version>.
#   make image VERSION=v0.1.0
# It carries the GlusterFS FUSE client (mount.glusterfs, glusterfs), which
# the CSI node plugin and the mount service (`glusterkube csi`, `glusterkube
# mounter`) run; they run as root (their DaemonSets say so). The other
# commands run as the image's non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.1.0-dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/glusterkube/glusterkube/cmd/glusterkube/app.Version=${VERSION}" \
      -o /out/glusterkube ./cmd/glusterkube

FROM debian:bookworm-slim
# glusterfs-client: the FUSE client and its mount helper (a shell script
# that also uses stat, sed, awk and getfattr from attr); mount/umount come
# with the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends glusterfs-client attr \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/glusterkube /glusterkube
USER 65532:65532
ENTRYPOINT ["/glusterkube"]
