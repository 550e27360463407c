"""The resource generator: `python -m app new resource ...` (a development tool, not shipped
in the image). Its templates, in `scaffold/templates/`, are the team's house style: edit them."""
