"""The shared cache on Redis, forgetful rather than failing while Redis is away.

Throttles, login lockouts and dashboard figures are counted here. While Redis is
away the cache acts as an empty one that keeps nothing (reads miss, writes are
dropped, `incr` finds no key), so every request still answers, and counting
resumes when Redis returns. What those counters guard is bounded in the database
too: attempts per challenge, django-otp's per-device throttling, pushes per subject."""

import logging
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

REDIS_AWAY = (RedisConnectionError, RedisTimeoutError)


class ForgetfulRedisCache(RedisCache):
    @staticmethod
    def _or(fallback: Any, operation: Callable[..., Any], *args: Any) -> Any:
        try:
            return operation(*args)
        except REDIS_AWAY as error:
            logger.warning("cache %s skipped, Redis is away: %s", operation.__name__, error)
            return fallback

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._or(default, super().get, key, default, version)

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return dict(self._or({}, super().get_many, keys, version))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return bool(self._or(False, super().has_key, key, version))

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._or(None, super().set, key, value, timeout, version)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return bool(self._or(False, super().add, key, value, timeout, version))

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[Any]:
        return list(self._or(list(data), super().set_many, data, timeout, version))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return bool(self._or(False, super().touch, key, timeout, version))

    def delete(self, key: Any, version: int | None = None) -> bool:
        return bool(self._or(False, super().delete, key, version))

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._or(None, super().delete_many, keys, version)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return int(super().incr(key, delta, version))
        except REDIS_AWAY as error:
            raise ValueError(f"Key {key!r} not found: Redis is away") from error
