"""The HTTP adapter: FastAPI app factory, error mapping, and (from the open-platform issue)
one router per context."""
