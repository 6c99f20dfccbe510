"""Settings profiles, read from the environment (see README.md, "Configuration").

- `workspace.settings.base`: the default (manage.py, asgi.py); `make run` sets DEBUG=1.
- `workspace.settings.production`: base plus HTTPS-only transport and cookies.
- `workspace.settings.test`: the test suite.
"""
