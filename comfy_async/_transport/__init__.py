"""The single request path: routes as data, credentials, retries, redirects, the REST namespaces.

``http`` is one of the two modules that import aiohttp (the other is ``_live.connection``): every
request goes through it, and every aiohttp exception is turned into the library's error tree
there, with secrets redacted. ``routes`` names each endpoint for both flavours (local and Comfy
Cloud), ``auth`` keeps credentials to their origin, ``retry`` and ``exchange`` decide what may be
sent again, and ``rest/`` holds the typed namespaces (``comfy.queue``, ``comfy.history``, …).

May import: ``errors``, ``config``, ``models``. Never the live session or the graph layer.
"""
