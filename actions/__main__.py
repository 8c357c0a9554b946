"""Run the action server, bound to 127.0.0.1 unless SANIC_HOST says otherwise.

Every request but /health must carry the shared secret (RASA_TOKEN) in the
X-Earshot-Token header, which Rasa sends from endpoints.yml; without it: 401.
"""

import hmac
import os
import sys
from typing import Any

TOKEN_HEADER = "X-Earshot-Token"  # noqa: S105 - a header name
DEFAULT_TOKEN = "dev-only-rasa-token"  # noqa: S105 - the dev default, refused in production


def require_token(app: Any) -> Any:
    """Add the shared-secret check to the SDK's Sanic app."""
    from sanic import response

    expected = (os.environ.get("RASA_TOKEN") or DEFAULT_TOKEN).encode()

    @app.on_request
    async def check(request: Any) -> Any:
        if request.path == "/health":
            return None
        given = request.headers.get(TOKEN_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return response.json({"error": f"missing or wrong {TOKEN_HEADER} header"}, status=401)
        return None

    return app


def main() -> None:
    os.environ.setdefault("SANIC_HOST", "127.0.0.1")
    import rasa_sdk.endpoint
    from rasa_sdk.__main__ import main as sdk_main

    create_app = rasa_sdk.endpoint.create_app
    rasa_sdk.endpoint.create_app = lambda *a, **k: require_token(create_app(*a, **k))
    port = os.environ.get("ACTION_SERVER_PORT", "5055")
    sys.argv = [sys.argv[0], "--actions", "actions", "--port", port, *sys.argv[1:]]
    sdk_main()


if __name__ == "__main__":
    main()
