# syntax=docker/dockerfile:1
# The runyard image: one static binary that is the control plane
# (`runyard server`, the default command) and the runner (`runyard runner`,
# as the Kubernetes manifest runs it). Published as ghcr.io/runyard/runyard
# with the release version as its tag (internal/manifest's default image).
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t ghcr.io/runyard/runyard:v1.2.3 .

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/runyard/runyard/internal/buildinfo.version=${VERSION} -X github.com/runyard/runyard/internal/buildinfo.commit=${COMMIT} -X github.com/runyard/runyard/internal/buildinfo.date=${DATE}" \
      -o /out/runyard ./cmd/runyard

# A small base with what the runner's work needs: git for workspaces, a
# shell for service and task commands, CA certificates for HTTPS, tini to
# reap the processes the runner's holders leave.
FROM alpine:3.22
RUN apk add --no-cache bash ca-certificates git openssh-client tini \
 && addgroup -S -g 65532 runyard \
 && adduser -S -D -u 65532 -G runyard -h /home/runyard -s /bin/bash runyard \
 && mkdir -p /var/lib/runyard /var/lib/runyard-runner \
 && chown runyard:runyard /var/lib/runyard /var/lib/runyard-runner
COPY --from=build /out/runyard /usr/local/bin/runyard
USER 65532:65532
WORKDIR /home/runyard
ENV HOME=/home/runyard
# 8080: the control plane's API, console and /metrics; 8081: the runner's
# /healthz and /readyz.
EXPOSE 8080 8081
VOLUME ["/var/lib/runyard"]
ENTRYPOINT ["/sbin/tini", "--", "/usr/local/bin/runyard"]
CMD ["server", "--listen", ":8080", "--data-dir", "/var/lib/runyard"]
