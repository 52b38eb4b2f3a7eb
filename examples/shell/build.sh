#!/bin/sh
# Any CI (Jenkins, Buildkite, cron): build and push this commit's image as sha-<short>.
set -eu
IMAGE="${IMAGE:?set IMAGE to the repository, e.g. registry.example.com/team/app}"
SHA_TAG="sha-$(git rev-parse HEAD | cut -c1-7)"
docker build -t "$IMAGE:$SHA_TAG" .
docker push "$IMAGE:$SHA_TAG"
