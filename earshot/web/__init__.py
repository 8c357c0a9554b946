"""The review dashboard for product teams (Starlette, server-rendered, no JS framework).

`earshot.web.app.create_app(settings)` builds it; `earshot web` serves it. Nothing is
imported here, so the `earshot web` command (earshot/cli/web.py) stays cheap.
"""
