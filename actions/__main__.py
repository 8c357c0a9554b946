"""Run the action server, bound to 127.0.0.1 unless SANIC_HOST says otherwise."""

import os
import sys


def main() -> None:
    os.environ.setdefault("SANIC_HOST", "127.0.0.1")
    from rasa_sdk.__main__ import main as sdk_main

    port = os.environ.get("ACTION_SERVER_PORT", "5055")
    sys.argv = [sys.argv[0], "--actions", "actions", "--port", port, *sys.argv[1:]]
    sdk_main()


if __name__ == "__main__":
    main()
