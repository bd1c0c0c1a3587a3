"""The HTTP endpoint (FastAPI app factory) and a uvicorn runner for the CLI and the console."""
