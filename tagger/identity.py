"""The identity of a build: the release version V and the immutable tag T of HEAD,
from the git state and the configuration (tag-policy §1-§2), and the OCI labels a
build of HEAD should carry. ``tagger version`` and ``tagger labels`` need nothing
more, so this module reaches no registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from semver import Version

from . import gitstate, policy
from .config import Config
from .errors import PolicyRefusal
from .gitstate import GitState
from .reference import validate_tag


@dataclass(frozen=True)
class Identity:
    """What git says is being published: V, T and the facts the policy needs."""

    state: GitState
    version: Version | None
    tag: str  # T
    sha_tag: str  # the SHA tag of HEAD, where CI pushes every build
    warnings: tuple[str, ...] = ()  # why a build is no release when it may be meant as one


def identify(cfg: Config, state: GitState, *, allow_dirty: bool) -> Identity:
    """V and T for HEAD, refusing a dirty tree unless allowed (§1-§2)."""
    if state.dirty and not allow_dirty:
        shown = ", ".join(state.dirty_files[:5])
        more = f" and {len(state.dirty_files) - 5} more" if len(state.dirty_files) > 5 else ""
        raise PolicyRefusal(
            f"the work tree has uncommitted changes: {shown}{more}",
            "commit or stash them, or pass --allow-dirty (T gets -dirty, no floating tag moves)",
        )
    version = policy.release_version(state.tags, cfg.tag_prefix)
    tag = policy.immutable_tag(
        version,
        state.commit,
        dirty=state.dirty,
        sha_prefix=cfg.sha_prefix,
        sha_length=cfg.sha_length,
    )
    sha = policy.sha_tag(state.commit, cfg.sha_prefix, cfg.sha_length)
    warnings = _sha_build_warnings(cfg, state, tag) if version is None else ()
    sha_hint = "choose a --sha-prefix of letters, digits, _ . and - (sha-length 4 to 40)"
    tag_hint = (
        f"the git tag {cfg.tag_prefix}{version} is too long for a Docker tag (128 characters"
        " at most): tag the release with a shorter pre-release or build part"
        if version is not None
        else sha_hint
    )
    return Identity(
        state, version, validate_tag(tag, tag_hint), validate_tag(sha, sha_hint), warnings
    )


def _sha_build_warnings(cfg: Config, state: GitState, tag: str) -> tuple[str, ...]:
    """A SHA build that may have been meant as a release: a version-like tag that §1
    ignores, or a shallow clone fetched without tags and no CI variable at all."""
    form = f"{cfg.tag_prefix}MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]"
    out = [
        f"tag {t} at HEAD is ignored: a version tag is {form} exactly; publishing {tag}"
        for t in policy.ignored_version_tags(state.tags, cfg.tag_prefix)
    ]
    if state.tagless and not state.ci:  # a branch or PR pipeline says it is no tag build
        out.append(
            f"shallow clone without tags: fetch tags (git fetch --tags) or set GITHUB_REF"
            f" and GITHUB_SHA (or CI_COMMIT_TAG and CI_COMMIT_SHA); publishing {tag}"
        )
    return tuple(out)


def read_identity(cfg: Config, path: str, env: Mapping[str, str], *, allow_dirty: bool) -> Identity:
    state = gitstate.current_state(
        path, env, untracked_dirty=cfg.untracked_dirty, tag_prefix=cfg.tag_prefix
    )
    return identify(cfg, state, allow_dirty=allow_dirty)


def build_labels(ident: Identity, path: str, env: Mapping[str, str]) -> dict[str, str]:
    """The OCI labels a build of HEAD should carry (``tagger labels``). The origin
    remote is read only when the CI names no repository URL."""
    from . import labels  # `tagger version` does not import it

    source = labels.source_url_from_env(env)
    epoch = labels.source_date_epoch(env)
    facts = gitstate.build_facts(path, ident.state.commit, origin=source is None)
    if source is None and facts.origin_url is not None:
        source = labels.web_url(facts.origin_url)
    return labels.make(
        commit=ident.state.commit,
        version=str(ident.version) if ident.version is not None else ident.tag,
        created=facts.commit_time if epoch is None else epoch,
        source=source,
    )
