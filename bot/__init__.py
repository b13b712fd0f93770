"""The core: domain types, services, ports, settings and the community file.

Nothing in this package imports ``telegram`` or ``aiohttp``; the edges in ``handlers/`` and
``sandbox/`` adapt those libraries to the services defined here.
"""
