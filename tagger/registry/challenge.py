"""``WWW-Authenticate`` challenges (RFC 7235), parsed without I/O.

Hand-written: requests and urllib3 have no public parser for challenges, and the
registry token flow needs the parameters (realm, service, scope, error).
"""

from __future__ import annotations


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """The scheme (lower case) and parameters of the first challenge in ``header``."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().strip(",").strip().lower()
        if rest[eq + 1 : eq + 2] == '"':
            end = rest.find('"', eq + 2)
            end = len(rest) if end < 0 else end
            params[key] = rest[eq + 2 : end]
            i = end + 1
        else:
            end = rest.find(",", eq + 1)
            end = len(rest) if end < 0 else end
            params[key] = rest[eq + 1 : end].strip()
            i = end
        i += 1 if i < len(rest) and rest[i] == "," else 0
    return scheme.lower(), params
