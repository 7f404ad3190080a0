"""JOBQUEUE_REDIS_URL forms: standalone, Sentinel and Cluster, and the errors for bad ones (no connection)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobqueue.errors import ConfigurationError
from jobqueue.redis_urls import RedisMode, parse_redis_url, with_password


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache.example:6380/2", "unix:///run/redis.sock"]
)
def test_standalone_urls_are_left_to_redis_py(url: str) -> None:
    target = parse_redis_url(url)
    assert target.mode is RedisMode.STANDALONE
    assert target.url == url


def test_sentinel_url_names_every_sentinel_the_service_the_database_and_both_passwords() -> None:
    target = parse_redis_url(
        "redis+sentinel://app:s%40cret@10.0.0.1:26379,sentinel-b,[::1]:26380/mymaster?db=3&sentinel_password=sp"
    )
    assert target.mode is RedisMode.SENTINEL
    assert target.nodes == (("10.0.0.1", 26379), ("sentinel-b", 26379), ("::1", 26380))
    assert target.service_name == "mymaster"
    assert target.db == 3
    assert (target.username, target.password, target.sentinel_password) == ("app", "s@cret", "sp")
    assert target.tls is False
    assert parse_redis_url("rediss+sentinel://h/m").tls is True


def test_cluster_url_lists_startup_nodes_with_the_default_port() -> None:
    target = parse_redis_url("redis+cluster://:pw@node-a:7000,node-b")
    assert target.mode is RedisMode.CLUSTER
    assert target.nodes == (("node-a", 7000), ("node-b", 6379))
    assert target.password == "pw"
    assert parse_redis_url("rediss+cluster://node-a").tls is True


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("memcached://h", "unknown scheme"),
        ("redis+sentinel://h:26379", "service name"),
        ("redis+sentinel://h/", "service name"),
        ("redis+sentinel://h/my master", "service name"),
        ("redis+sentinel:///mymaster", "no host"),
        ("redis+sentinel://h:0/m", "port"),
        ("redis+sentinel://h:99999999999999999999/m", "port"),
        ("redis+sentinel://h:\uff12\uff16\uff13\uff17\uff19/m", "port"),  # full-width digits
        ("redis+sentinel://h/m?db=x", "db"),
        ("redis+sentinel://h/m?db=99999999999999999999", "db"),
        ("redis+sentinel://h/m?timeout=3", "unknown option"),
        ("redis+sentinel://h/m?db", "query string"),
        ("redis+sentinel://h\x00x/m", "printable"),
        ("redis+sentinel://h/m\ud800", "printable"),
        ("redis+cluster://a,,b", "host"),
        ("redis+cluster://a b", "host"),
        ("redis+cluster://a/1", "only database 0"),
        ("redis+cluster://a?db=1", "unknown option"),
        ("redis+cluster://a?sentinel_password=x", "sentinel"),
        ("redis+cluster://[::1", "host"),
        ("redis+cluster://a#frag", "fragment"),
        ("", "non-empty"),
    ],
)
def test_bad_urls_raise_configuration_error_naming_the_part(url: str, names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        parse_redis_url(url)


def test_errors_never_show_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_redis_url("redis+sentinel://:hunter2@h:port/m")
    assert "hunter2" not in str(caught.value)


def test_a_huge_url_is_refused_before_parsing() -> None:
    with pytest.raises(ConfigurationError, match="at most"):
        parse_redis_url("redis+cluster://" + ",".join(["h"] * 10_000))


def test_more_hosts_than_the_limit_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at most 64 hosts"):
        parse_redis_url("redis+cluster://" + ",".join(["h"] * 65))


@given(st.text(max_size=200))
def test_any_text_after_the_scheme_parses_or_raises_configuration_error(rest: str) -> None:
    for scheme in ("redis+sentinel://", "redis+cluster://"):
        try:
            target = parse_redis_url(scheme + rest)
        except ConfigurationError:
            continue
        assert target.nodes
        assert all(0 < port < 65536 for _, port in target.nodes)


@pytest.mark.parametrize(
    "url", ["redis://10.0.0.1:6379/0", "redis+sentinel://s1,s2/mymaster", "redis+cluster://node-a,node-b"]
)
def test_a_password_given_apart_is_used_for_a_url_without_one(url: str) -> None:
    target = with_password(parse_redis_url(url), "p@ss:word")
    assert target.password == "p@ss:word"
    assert "p@ss" not in repr(target)
    assert with_password(parse_redis_url(url), None) == parse_redis_url(url)


@pytest.mark.parametrize(
    "url", ["redis://:pw@10.0.0.1:6379/0", "redis+sentinel://:pw@s1/mymaster", "redis+cluster://u:pw@node-a"]
)
def test_a_password_in_the_url_and_apart_is_refused_without_echoing_either(url: str) -> None:
    with pytest.raises(ConfigurationError, match="JOBQUEUE_REDIS_PASSWORD") as caught:
        with_password(parse_redis_url(url), "other-secret")
    assert "other-secret" not in str(caught.value) and ":pw" not in str(caught.value)


def test_a_password_apart_with_nul_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="NUL"):
        with_password(parse_redis_url("redis+cluster://node-a"), "a\x00b")
