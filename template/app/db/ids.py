"""Primary keys of tables keyed by UUID: UUIDv7 (RFC 9562) is time-ordered, so new rows land at
the end of the key's index as identity ids do, not on random pages as UUIDv4 would. Made in
Python: PostgreSQL has uuidv7() from version 18 only, and the service may run on 16 or 17."""

import os
import time
from uuid import UUID


def uuid7() -> UUID:
    """48 bits of Unix time in milliseconds, the version (7), 12 random bits, the variant
    (0b10), 62 random bits: ordered by the millisecond they were made in."""
    milliseconds = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    value = (milliseconds & (2**48 - 1)) << 80 | 0x7 << 76 | (random >> 62 & 0xFFF) << 64
    return UUID(int=value | 0b10 << 62 | random & (2**62 - 1))
