"""What one test writes, the next does not see: both tests below fail if isolation leaks."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User
from tests.support import UserFactory

SHARED_EMAIL = "isolation@example.com"


# One xdist group (with --dist=loadgroup): both runs share a worker, and so a database.
@pytest.mark.xdist_group("isolation")
@pytest.mark.parametrize("run", ["first", "second"])
async def test_starts_empty_then_writes(
    run: str, session: AsyncSession, user_factory: UserFactory
) -> None:
    count = select(func.count()).select_from(User).where(User.email == SHARED_EMAIL)
    assert await session.scalar(count) == 0

    await user_factory(email=SHARED_EMAIL)

    assert await session.scalar(count) == 1
