"""Two processes, as two Rasa servers, take the lock of one conversation N times each
through a lock store; prints counts of broken mutual exclusion, LockErrors and hangs as
JSON. Runs in the Rasa venv: `python lock_race.py REDIS_URL N [stock]`."""

import asyncio
import json
import multiprocessing as mp
import sys
import uuid

import redis
from addons.lock_store import AtomicRedisLockStore
from rasa.core.lock_store import LockError, RedisLockStore

PREFIX = "lockrace" + uuid.uuid4().hex[:8]


def worker(url: str, cid: str, n: int, stock: bool, out: "mp.Queue[dict[str, int]]") -> None:
    async def main() -> None:
        r = redis.Redis.from_url(url)
        kw = r.connection_pool.connection_kwargs
        cls = RedisLockStore if stock else AtomicRedisLockStore
        store = cls(host=kw["host"], port=kw["port"], db=kw.get("db", 0), key_prefix=PREFIX)
        stats = {"ok": 0, "overlap": 0, "lockerror": 0, "hang": 0}
        for _ in range(n):

            async def turn() -> None:
                async with store.lock(cid, lock_lifetime=60, wait_time_in_seconds=0.02):
                    if int(r.incr(PREFIX + "inside")) > 1:  # type: ignore[arg-type]
                        stats["overlap"] += 1
                    await asyncio.sleep(0.005)
                    r.decr(PREFIX + "inside")

            try:
                await asyncio.wait_for(turn(), 10)
                stats["ok"] += 1
            except LockError:
                stats["lockerror"] += 1
            except asyncio.TimeoutError:
                stats["hang"] += 1
                r.set(PREFIX + "inside", 0)
        out.put(stats)

    asyncio.run(main())


if __name__ == "__main__":
    url, n, stock = sys.argv[1], int(sys.argv[2]), sys.argv[3:] == ["stock"]
    queue: "mp.Queue[dict[str, int]]" = mp.Queue()
    cid = "conv-" + uuid.uuid4().hex[:8]
    procs = [mp.Process(target=worker, args=(url, cid, n, stock, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    print(json.dumps({k: sum(r[k] for r in results) for k in results[0]}))
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=PREFIX + "*"))
    if keys:
        client.delete(*keys)
