"""Which Redis deployment a ``JOBQUEUE_REDIS_URL`` names: pure parsing, no connection (broker/redis_io.py
builds the client from the result).

The forms (docs/operations.md, "Redis deployments"):

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS), ``unix:///path.sock``: one server,
  parsed by redis-py itself as before;
- ``redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]...]/service_name[?db=N&sentinel_password=P]``
  (``rediss+sentinel://`` for TLS to the sentinels and the primary): the sentinels are asked which server is
  the primary of ``service_name``, and asked again after a failover. The password in the user part is the
  primary's; the sentinels get ``sentinel_password`` (none when absent). Sentinel port default: 26379;
- ``redis+cluster://[[user]:password@]host1[:port1][,host2[:port2]...]`` (``rediss+cluster://`` for TLS):
  startup nodes of a Redis Cluster; the client learns the rest of the topology from them. Port default:
  6379. A cluster has only database 0, so no path is accepted.

A bad URL raises ConfigurationError naming the part at fault; the password never appears in the message.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from jobqueue.errors import ConfigurationError


class RedisMode(enum.StrEnum):
    """The kind of Redis deployment a URL names."""

    STANDALONE = "standalone"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


_STANDALONE_SCHEMES = frozenset({"redis", "rediss", "unix"})
_MULTI_HOST_SCHEMES = {
    "redis+sentinel": (RedisMode.SENTINEL, False),
    "rediss+sentinel": (RedisMode.SENTINEL, True),
    "redis+cluster": (RedisMode.CLUSTER, False),
    "rediss+cluster": (RedisMode.CLUSTER, True),
}
_DEFAULT_PORT = {RedisMode.SENTINEL: 26379, RedisMode.CLUSTER: 6379}
# Host names, IPv4 and bracketed IPv6 literals; anything else (spaces, control characters, NUL) is refused
# before it reaches a resolver.
_HOST = re.compile(r"[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
_SERVICE_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_QUERY_KEYS = frozenset({"db", "sentinel_password"})
_MAX_NODES = 64
_MAX_URL_CHARS = 8192


@dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URL. For STANDALONE only ``url`` matters (redis-py parses it); for SENTINEL ``nodes``
    are the sentinels, for CLUSTER the startup nodes."""

    mode: RedisMode
    url: str = field(default="", repr=False)
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False


def _error(scheme: str, what: str) -> ConfigurationError:
    return ConfigurationError(f"JOBQUEUE_REDIS_URL ({scheme}://...): {what}")


def _parse_port(scheme: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise _error(scheme, f"port {text[:20]!r} must be a number from 1 to 65535")
    return int(text)


def _parse_nodes(scheme: str, hosts: str, default_port: int) -> tuple[tuple[str, int], ...]:
    parts = hosts.split(",")
    if len(parts) > _MAX_NODES:
        raise _error(scheme, f"at most {_MAX_NODES} hosts")
    nodes: list[tuple[str, int]] = []
    for part in parts:
        if part.startswith("["):
            host, bracket, rest = part.partition("]")
            if not bracket:
                raise _error(scheme, f"host {part[:60]!r} opens '[' without closing it")
            host += "]"
            if rest and not rest.startswith(":"):
                raise _error(scheme, f"host {part[:60]!r} is not host:port")
            port_text = rest[1:]
        else:
            host, _, port_text = part.partition(":")
        if not _HOST.fullmatch(host):
            raise _error(scheme, f"host {host[:60]!r} is not a host name or IP address")
        port = _parse_port(scheme, port_text) if port_text else default_port
        nodes.append((host.strip("[]"), port))
    return tuple(nodes)


def parse_redis_url(url: str) -> RedisTarget:
    """The deployment ``url`` names (see the module docstring for the forms); ConfigurationError if bad."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError("JOBQUEUE_REDIS_URL: must be a non-empty URL")
    if len(url) > _MAX_URL_CHARS or not url.isprintable():
        raise ConfigurationError(
            f"JOBQUEUE_REDIS_URL: must be at most {_MAX_URL_CHARS} printable characters "
            "(no NUL, control or non-printable characters)"
        )
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or (scheme not in _STANDALONE_SCHEMES and scheme not in _MULTI_HOST_SCHEMES):
        known = ", ".join(sorted(_STANDALONE_SCHEMES | set(_MULTI_HOST_SCHEMES)))
        raise ConfigurationError(f"JOBQUEUE_REDIS_URL: unknown scheme {scheme[:30]!r} (use one of {known})")
    if scheme in _STANDALONE_SCHEMES:
        return RedisTarget(RedisMode.STANDALONE, url=url)
    mode, tls = _MULTI_HOST_SCHEMES[scheme]
    rest, _, query = rest.partition("?")
    if "#" in rest or "#" in query:
        raise _error(scheme, "no fragment ('#') is allowed; percent-encode a '#' in a password as %23")
    # The user part ends at the LAST '@' before the path: a password may hold '@' only percent-encoded,
    # but splitting at the last one keeps a stray one inside the secret rather than in a host name.
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
    if not hosts:
        raise _error(scheme, "no host given")
    nodes = _parse_nodes(scheme, hosts, _DEFAULT_PORT[mode])
    options: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _error(scheme, "the query string is not name=value pairs") from None
    for key, value in pairs:
        if key not in _QUERY_KEYS or (mode is RedisMode.CLUSTER and key == "db"):
            allowed = "sentinel_password" if mode is RedisMode.CLUSTER else "db, sentinel_password"
            raise _error(scheme, f"unknown option {key[:40]!r} (allowed: {allowed})")
        if mode is RedisMode.CLUSTER and key == "sentinel_password":
            raise _error(scheme, "sentinel_password is for redis+sentinel:// URLs")
        options[key] = value
    service_name = ""
    if mode is RedisMode.SENTINEL:
        service_name = unquote(path)
        if not _SERVICE_NAME.fullmatch(service_name):
            raise _error(
                scheme, "the path must be the primary's service name (letters, digits, '.', '_', '-')"
            )
    elif slash and path:
        raise _error(scheme, "a Redis Cluster has only database 0: give no path")
    db_text = options.get("db", "0")
    if not db_text.isascii() or not db_text.isdigit() or len(db_text) > 5:
        raise _error(scheme, f"db {db_text[:20]!r} must be a database number")
    sentinel_password = options.get("sentinel_password")
    return RedisTarget(
        mode,
        url=url,
        nodes=nodes,
        service_name=service_name,
        db=int(db_text),
        username=username,
        password=password,
        sentinel_password=sentinel_password or None,
        tls=tls,
    )


def with_password(target: RedisTarget, password: str | None) -> RedisTarget:
    """``target`` with the password given apart from its URL (JOBQUEUE_REDIS_PASSWORD), so the URL can be
    plain configuration and the password alone a secret (the Helm chart's redis.external). None: the
    target as parsed. A URL with a password of its own is refused: two passwords, one of them silently
    ignored, would make a rotated secret look applied when it is not."""
    if password is None:
        return target
    if "\x00" in password:
        raise ConfigurationError("JOBQUEUE_REDIS_PASSWORD: must not contain NUL")
    if target.mode is RedisMode.STANDALONE:
        try:
            in_url = urlsplit(target.url).password is not None
        except ValueError:  # redis-py reports a malformed URL itself, with its own message
            in_url = False
    else:
        in_url = target.password is not None
    if in_url:
        raise ConfigurationError(
            "JOBQUEUE_REDIS_PASSWORD is set and JOBQUEUE_REDIS_URL carries a password too: "
            "give it in one place"
        )
    return dataclasses.replace(target, password=password)
