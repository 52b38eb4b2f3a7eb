#!/bin/sh
# Any CI (Jenkins, Buildkite, cron): build and push this commit's image as sha-<short>,
# labelled with its provenance (tagger labels: revision, version, created, source), so
# that the release can check it was built from the commit it publishes.
set -eu
IMAGE="${IMAGE:?set IMAGE to the repository, e.g. registry.example.com/team/app}"
SHA_TAG="$(tagger version --sha)"
LABELS="$(tagger labels)"
set --
while IFS= read -r label; do
  set -- "$@" --label "$label"
done <<EOF_LABELS
$LABELS
EOF_LABELS
docker build "$@" -t "$IMAGE:$SHA_TAG" .
docker push "$IMAGE:$SHA_TAG"
