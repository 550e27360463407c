"""The models of the resources added with `python -m app new resource`, which edits this module
(imported by app.models, so Alembic sees their tables).

The template ships it once and never changes it afterwards (copier.yml `_skip_if_exists`), so
`copier update` has nothing to merge here, however many resources a team adds."""
