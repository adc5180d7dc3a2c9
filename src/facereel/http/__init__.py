"""The HTTP API (FastAPI) and the web page, served by `facereel up`."""
