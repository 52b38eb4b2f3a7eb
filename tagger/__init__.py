"""tagger: publish container images under the tags users can trust."""

__version__ = "0.1.0"
