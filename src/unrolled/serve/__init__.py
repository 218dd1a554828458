"""``unrolled serve``: an HTTP API over the models given at start, and the explorer pages (the ``[serve]``
extra: FastAPI and uvicorn). :func:`unrolled.serve.app.create_app` builds the ASGI app."""
