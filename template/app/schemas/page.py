from typing import Generic, TypeVar

from pydantic import BaseModel

ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    """One page of a list: its items, how many there are in all, and where the page starts."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int
