"""Edits a team makes to its project, as the tests make them: a model of their own."""

from pathlib import Path

TAG_MODEL = """\
{vector_import}from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(50), unique=True)
{vector_column}"""


def add_tag_model(project: Path, *, with_vector: bool) -> None:
    (project / "app" / "models" / "tag.py").write_text(
        TAG_MODEL.format(
            vector_import="from pgvector.sqlalchemy import Vector\n" if with_vector else "",
            vector_column=(
                "    embedding: Mapped[list[float]] = mapped_column(Vector(3))\n"
                if with_vector
                else ""
            ),
        )
    )
    write_models_package(project)


def write_models_package(project: Path) -> None:
    """app/models/__init__.py importing every model module there, as a team keeps it."""
    package = project / "app" / "models"
    modules = sorted(
        path.stem for path in package.glob("*.py") if path.stem not in ("__init__", "resources")
    )
    imports = ["from app.models import resources  # noqa: F401"]
    imports += [f"from app.models.{module} import {module.capitalize()}" for module in modules]
    names = ", ".join(f'"{module.capitalize()}"' for module in modules)
    (package / "__init__.py").write_text("\n".join(imports) + f"\n\n__all__ = [{names}]\n")


def edit(path: Path, replacements: list[tuple[str, str]]) -> None:
    text = path.read_text()
    for old, new in replacements:
        assert old in text, f"{path} no longer contains {old!r}"
        text = text.replace(old, new, 1)
    path.write_text(text)
