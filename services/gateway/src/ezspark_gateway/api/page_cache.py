"""The hot read's kept pages: each user's rendered list page, served again only while
the user's ``data_version`` is unchanged.

The version comes from the same statement that reads the caller's credential
(``reads.credential_row``), on every request, and a database trigger bumps it in the
same transaction as every write to the user's trainings (migration 0004).  So a kept
page is never served once its data changed, whichever worker, replica or process wrote
it, and the credential is still read and judged on every request: revocation and
expiry are not delayed (docs/production.md).  What the cache saves is the page's
statements, its validation and its JSON.

Each worker process keeps its own pages (nothing is shared but the database).  Entries
are bounded in bytes, oldest dropped first.  Lookups may run on a database thread
(``dict.get`` under the GIL); additions run on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

# Per process: a page is at most a few hundred bytes per training (limit <= 500).
MAX_BYTES = 8 * 1024 * 1024
_ENTRY_OVERHEAD = 256  # the key, the entry and the dict slot, roughly

Key = tuple[int, int, int]  # user id, limit, offset (the unfiltered list only)
# The caller's account as just read with the credential: id, name, creation time, and
# ``data_version``.
Owner = tuple[int, str, float, int]


@dataclass(frozen=True, slots=True)
class _Page:
    owner: tuple[str, float]  # the user's name and creation time: never another user's
    version: int
    body: bytes


class PageCache:
    """Rendered pages of the unfiltered list by (user, limit, offset)."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pages: dict[Key, _Page] = {}
        self._bytes = 0

    def get(self, owner: Owner, limit: int, offset: int) -> bytes | None:
        """The page kept for ``owner``, if it was rendered at the owner's current
        ``data_version`` (as just read with the credential); else None."""
        uid, name, created, version = owner
        page = self._pages.get((uid, limit, offset))
        if page is None or page.version != version:
            return None
        if page.owner != (name, created):
            return None  # an id reused by another account
        return page.body

    def put(self, owner: Owner, limit: int, offset: int, body: bytes) -> None:
        """Keep ``body``, the page read after ``owner`` (and its version) was read."""
        uid, name, created, version = owner
        key = (uid, limit, offset)
        self._drop(key)
        size = len(body) + _ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        while self._bytes + size > self.max_bytes:
            self._drop(next(iter(self._pages)))
        self._pages[key] = _Page((name, created), version, body)
        self._bytes += size

    def _drop(self, key: Key) -> None:
        page = self._pages.pop(key, None)
        if page is not None:
            self._bytes -= len(page.body) + _ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._pages)
