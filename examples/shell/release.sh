#!/bin/sh
# Then publish it: on a commit with a version tag (v1.2.3) this makes 1.2.3 and moves
# 1.2, 1 and latest where the policy puts them; on any other commit it only makes sure
# sha-<short> is there. Credentials: TAGGER_USERNAME / TAGGER_PASSWORD (in Jenkins,
# from withCredentials), or a docker login.
set -eu
IMAGE="${IMAGE:?set IMAGE to the repository, e.g. registry.example.com/team/app}"
tagger release --image "$IMAGE"
