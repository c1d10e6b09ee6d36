"""The shared cache forgets rather than fails while Redis is away (portal.cache), so
throttles and lockouts never turn a request into a 500."""

import socket

import pytest

from portal.cache import ForgetfulRedisCache


@pytest.fixture
def cache_without_redis():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    return ForgetfulRedisCache(f"redis://127.0.0.1:{port}/1", {"OPTIONS": {"socket_connect_timeout": 1}})


def test_reads_miss_and_writes_are_dropped_while_redis_is_away(cache_without_redis):
    cache = cache_without_redis
    cache.set("failures", 3)
    assert cache.get("failures", "missing") == "missing"
    assert cache.get_many(["failures"]) == {}
    assert cache.add("failures", 1) is False
    assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
    assert cache.touch("failures") is False and cache.delete("failures") is False
    assert cache.has_key("failures") is False


def test_a_count_finds_no_key_while_redis_is_away(cache_without_redis):
    with pytest.raises(ValueError, match="Redis is away"):
        cache_without_redis.incr("failures")
