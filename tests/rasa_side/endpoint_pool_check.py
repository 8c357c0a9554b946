"""Rasa's EndpointConfig.request against a local server, before and after Earshot's
patches: the same answers, and how many TCP connections each way took. Prints JSON.
Runs in the Rasa venv."""

import asyncio
import json

from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

CALLS = 5


async def main() -> dict:
    peers: list = []

    async def webhook(request: web.Request) -> web.Response:
        transport = request.transport
        assert transport is not None  # typed optional; a live request has one
        peers.append(transport.get_extra_info("peername")[1])
        body = await request.json()
        return web.json_response({"echo": body["n"], "token": request.query.get("token")})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    # A TCPSite's server is an asyncio.Server (typed AbstractServer | None by aiohttp).
    assert isinstance(server, asyncio.Server)
    port = server.sockets[0].getsockname()[1]
    endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook", token="s3cret")

    async def calls() -> list:
        return [await endpoint.request(json={"n": i}, method="post") for i in range(CALLS)]

    rasa_answers = await calls()
    rasa_peers, peers[:] = list(peers), []

    from addons.patches import _POOLED, close_pooled_sessions, install_patches

    install_patches()
    ours_answers = await calls()
    ours_peers = list(peers)
    # A copy of the endpoint (Rasa copies them) shares the pool too.
    copy_answer = await endpoint.copy().request(json={"n": 99}, method="post")
    pooled_open = sum(not s.closed for s in _POOLED.values())
    await close_pooled_sessions()
    closed = all(s.closed for s in _POOLED.values()) and not _POOLED
    await runner.cleanup()
    return {
        "rasa_answers": rasa_answers,
        "ours_answers": ours_answers,
        "rasa_connections": len(set(rasa_peers)),
        "ours_connections": len(set(ours_peers + peers[len(ours_peers) :])),
        "copy_answer": copy_answer,
        "pooled_open": pooled_open,
        "closed_on_shutdown": closed,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
