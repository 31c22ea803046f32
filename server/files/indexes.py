"""The collections files owns, and their indexes: the GridFS bucket ``files``
(server/files/store.py), its ``files.files`` and ``files.chunks``."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

COLLECTIONS = ("files", "files.files", "files.chunks")

INDEXES: dict[str, list[IndexModel]] = {
    # the driver's own two indexes (same keys, so it finds them and creates none), and the
    # owner lookup of FileStore.owned_by
    "files.files": [
        IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)]),
        IndexModel([("metadata.owner_id", ASCENDING), ("_id", ASCENDING)], name="by_owner"),
    ],
    "files.chunks": [
        IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True),
    ],
}
