"""EzSpark gateway: HTTP API, web pages and the consumer of evolver events.

Layers: ``api`` (routers, schemas, deps) → ``core`` (use cases) → ``storage`` (SQLAlchemy);
``web`` renders pages on top of the same use cases; ``main`` wires the broker.
"""
