"""Former home of what the tests share; it now lives in the harness library (harness/answers.py,
render.py, environments.py, edits.py, commands.py, paths.py). Kept as re-exports so modules
written against it still import; new code imports from harness directly."""

from harness.answers import (
    BASE_ANSWERS,
    COPIER_YML,
    DRIVERS,
    QUESTIONS,
    Combination,
    choices,
    combinations,
)
from harness.commands import run
from harness.edits import TAG_MODEL, add_tag_model, write_models_package
from harness.environments import (
    FOREIGN_PREFIXES,
    FOREIGN_VARIABLES,
    available_python_versions,
    interpreter,
    project_environment,
    project_python,
)
from harness.paths import CACHE, ROOT
from harness.render import IGNORED, TEMPLATE_FILES, copy_working_tree, render

__all__ = [
    "BASE_ANSWERS",
    "CACHE",
    "COPIER_YML",
    "DRIVERS",
    "FOREIGN_PREFIXES",
    "FOREIGN_VARIABLES",
    "IGNORED",
    "QUESTIONS",
    "ROOT",
    "TAG_MODEL",
    "TEMPLATE_FILES",
    "Combination",
    "add_tag_model",
    "available_python_versions",
    "choices",
    "combinations",
    "copy_working_tree",
    "interpreter",
    "project_environment",
    "project_python",
    "render",
    "run",
    "write_models_package",
]
