"""tagger: publish container images under the tags users can trust."""

# The distribution on PyPI; "tagger" there is an unrelated project. The import package
# and the command keep the name tagger.
DIST_NAME = "oci-tagger"


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed distribution's metadata on first use
    (importlib.metadata costs ~20 ms to import: no command but --version pays it)."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(DIST_NAME)
        except PackageNotFoundError:  # a checkout on sys.path, never installed
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
