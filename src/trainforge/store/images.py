"""What trainforge learned about images by looking inside them (the image checks), kept by
image id so that an image is probed once per machine, not once per job or per process."""

from __future__ import annotations

import json
import time

from trainforge.engines.base import ImageContents
from trainforge.store.db import Database


class ImageProbeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, image_id: str) -> ImageContents | None:
        row = (
            self.db.read()
            .execute(
                "SELECT entries_under, on_path FROM image_probes WHERE image_id = ?", (image_id,)
            )
            .fetchone()
        )
        if row is None:
            return None
        return ImageContents(tuple(json.loads(row[0])), bool(row[1]))

    def put(self, image_id: str, contents: ImageContents) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO image_probes (image_id, entries_under, on_path,"
                " checked_at) VALUES (?,?,?,?)",
                (
                    image_id,
                    json.dumps(list(contents.entries_under)),
                    int(contents.on_path),
                    time.time(),
                ),
            )
