#!/usr/bin/env bash
# Build the batchml image from this repository: docker/build-image.sh [TAG...]
# (default batchml:latest). PYTHON_IMAGE is the base; by default batchml-base:bookworm,
# built from Debian packages by docker/base-image.sh when it is missing, since no image
# registry may be reachable. With a registry: PYTHON_IMAGE=python:3.11-slim-bookworm.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_IMAGE=${PYTHON_IMAGE:-batchml-base:bookworm}
[ $# -gt 0 ] || set -- batchml:latest

case "$PYTHON_IMAGE" in
  batchml-base:*) docker/base-image.sh "$PYTHON_IMAGE" ;;
esac

# No buildx plugin: the classic builder (the Dockerfile needs nothing BuildKit-only).
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0

tags=()
for tag in "$@"; do tags+=(--tag "$tag"); done
docker build \
  --file docker/Dockerfile \
  --build-arg PYTHON_IMAGE="$PYTHON_IMAGE" \
  --build-arg GIT_SHA="${GIT_SHA:-$(git rev-parse --short=12 HEAD 2>/dev/null || true)}" \
  "${tags[@]}" .

# The images these tags held before, now untagged: only this stage carries the label, so the
# build stages, which are the next build's cache, stay.
docker image prune --force --filter label=org.opencontainers.image.title=batchml >/dev/null
