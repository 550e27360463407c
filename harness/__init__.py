"""Runs generated services for real (embedded PostgreSQL, uvicorn, load): measures, breaks."""
