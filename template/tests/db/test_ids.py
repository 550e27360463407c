import time
from uuid import UUID

from app.db.ids import uuid7


def test_uuid7_is_a_version_7_rfc_uuid_holding_the_time_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000

    assert made.version == 7
    assert made.variant == "specified in RFC 4122"
    assert before <= made.int >> 80 <= after


def test_uuid7s_made_in_later_milliseconds_sort_later() -> None:
    made: list[UUID] = []
    for _ in range(5):
        made.append(uuid7())
        time.sleep(0.002)

    assert made == sorted(made)
    assert len(set(made)) == 5
