"""The default cache's settings, from CACHE_URL: the backends every rate limit counts in.

Rate limits must count across processes and hosts, so the default cache is shared: the
database's (`manage.py createcachetable`) unless CACHE_URL names Redis. Either way Django's
backend is swapped for the one in `authentications/kit/counters.py` whose `incr` is one
atomic step that keeps the counter's expiry. Kept apart from settings.py so the tests that
run Redis as the cache build it exactly as a deployment does.
"""

import environ

DEFAULT_URL = "dbcache://bcconnect_cache?max_entries=20000&cull_frequency=4"
COUNTING_BACKENDS = {
    "django.core.cache.backends.db.DatabaseCache": "authentications.kit.counters.DatabaseCache",
    "django.core.cache.backends.redis.RedisCache": "authentications.kit.counters.RedisCache",
}
# Connecting to Redis and each command wait 10 s at most (redis-py waits for ever without):
# for the cache and for RQ's queues (settings.RQ_QUEUES); the URL's own ?socket_timeout=N wins.
REDIS_TIMEOUTS = {"socket_connect_timeout": 10, "socket_timeout": 10}


def config(url):
    """The CACHES entry for `url`."""
    cache = environ.Env.cache_url_config(url)
    cache["BACKEND"] = COUNTING_BACKENDS.get(cache["BACKEND"], cache["BACKEND"])
    if cache["BACKEND"] == COUNTING_BACKENDS["django.core.cache.backends.redis.RedisCache"]:
        cache["OPTIONS"] = {**REDIS_TIMEOUTS, **cache.get("OPTIONS", {})}
    return cache
