"""Was the image built from the commit being released?

The OCI labels (image config) or annotations (manifest, index) say so:
``org.opencontainers.image.revision`` must be HEAD's full SHA when present, and
``org.opencontainers.image.version`` must name the release when present. Absent
revision: a warning, or a refusal with ``--require-revision``.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from semver import Version

from .errors import PolicyRefusal

REVISION = "org.opencontainers.image.revision"
VERSION = "org.opencontainers.image.version"


def accepted_versions(tag: str, version: Version | None, tag_prefix: str, sha_tag: str) -> set[str]:
    """What a version label may say: T, the version (with or without the git tag
    prefix), or the commit's SHA tag (an image CI built and labelled for the commit,
    now promoted to a release)."""
    out = {tag, sha_tag, tag.removesuffix("-dirty")}
    if version is not None:
        out |= {str(version), f"{tag_prefix}{version}"}
    return out


def check(
    labels: Mapping[str, Set[str]],
    *,
    source: str,
    commit: str,
    accepted: set[str],
    tag: str,
    require_revision: bool,
) -> list[str]:
    """Refuse an image built from another commit or for another version; return the
    warnings to show (no revision label)."""
    revisions = sorted(labels.get(REVISION, set()))
    for rev in revisions:
        if rev.strip().lower() != commit.lower():
            short = commit.lower().startswith(rev.strip().lower()) and len(rev.strip()) >= 4
            raise PolicyRefusal(
                f"this image was built from {rev}, HEAD is {commit} ({source}, label {REVISION})",
                "the label holds a short SHA: label images with the full one (git rev-parse HEAD)"
                if short
                else "publish the image built from this commit (rebuild it, or check out"
                " the commit it was built from)",
            )
    for value in sorted(labels.get(VERSION, set())):
        if value.strip() not in accepted:
            raise PolicyRefusal(
                f"this image was built as version {value}, the release is {tag}"
                f" ({source}, label {VERSION})",
                "publish the image built for this release, or fix the label in the build",
            )
    if revisions:
        return []
    if require_revision:
        raise PolicyRefusal(
            f"{source} has no {REVISION} label, and --require-revision is set",
            f"build it with --label {REVISION}=$(git rev-parse HEAD)",
        )
    return [
        f"{source} has no {REVISION} label: cannot check that it was built from"
        f" {commit[:12]} (--require-revision refuses such images)"
    ]
