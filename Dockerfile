# The image the examples run: ghcr.io/glusterkube/glusterkube:<version>.
#   make image VERSION=v0.1.0
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.1.0-dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/glusterkube/glusterkube/cmd/glusterkube/app.Version=${VERSION}" \
      -o /out/glusterkube ./cmd/glusterkube

# Static binary, no shell, non-root (the examples run as 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/glusterkube /glusterkube
USER 65532:65532
ENTRYPOINT ["/glusterkube"]
