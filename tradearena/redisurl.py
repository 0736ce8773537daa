"""Redis URLs, pure (settings validate them without importing a Redis client): which
topology a URL names and the URL redis-py itself parses. `tradearena.redisconn`
builds the clients and re-exports these."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
PLAIN_SCHEMES = ("redis", "rediss", "unix")


class RedisUrlError(ValueError):
    pass


def is_cluster_url(url: str) -> bool:
    return _scheme(url) in CLUSTER_SCHEMES


def plain_url(url: str) -> str:
    """The URL redis-py itself parses: the `+cluster` marker removed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in CLUSTER_SCHEMES:
        if parts.path not in ("", "/", "/0"):
            raise RedisUrlError(f"a Redis Cluster has only database 0, not {parts.path!r}")
        return urlunsplit(parts._replace(scheme=CLUSTER_SCHEMES[scheme], path=""))
    if scheme not in PLAIN_SCHEMES:
        raise RedisUrlError(
            f"unsupported Redis URL scheme {parts.scheme!r}: use redis://, rediss://, "
            "redis+cluster:// or rediss+cluster://"
        )
    return url


def validate_url(url: str) -> str:
    """For settings validators: the URL as given, or a clear error."""
    plain = plain_url(url)
    if not urlsplit(plain).hostname and not plain.startswith("unix"):
        raise RedisUrlError("the Redis URL has no host")
    return url


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()
