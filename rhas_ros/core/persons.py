"""Person boxes from an upstream detector or tracker (``detector: external``), free of ROS.

Three sources, one form (``PersonsInput``): rhas_msgs/TrackedPersonArray (pixel boxes, integer
ids), vision_msgs/Detection2DArray (pixel centre + size, string ids, class hypotheses) and ROS4HRI
bodies (REP-155: one normalised region of interest per body id, on its own topic). Upstream ids
are strings here; ``ExternalIds`` gives each a stable integer for the tracker (which matches a
detection to the track with the same upstream id first) and remembers the string, so the node
can publish which body a person is. Boxes are validated the same way whatever their source:
non-finite, empty or negative sizes, boxes wholly outside the image and normalised coordinates
outside [0, 1] are dropped and counted.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field

import numpy as np

from .tracking.matching import clip_to_image

IDS_KEPT = 10_000  # upstream ids remembered (least recently seen forgotten first)
HRI_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")  # REP-155 ids are short alphanumeric strings; others make no topic name


@dataclass
class PersonsInput:
    """One stamp's upstream boxes: (N, 4) x, y, w, h (pixels, or fractions of the image when
    ``normalized``), scores (N,), upstream ids (N strings; '' = untracked) or None."""

    boxes: np.ndarray
    scores: np.ndarray
    keys: list[str] | None = None
    normalized: bool = False
    rejected: int = 0  # boxes the conversion already refused (bad values)

    @classmethod
    def empty(cls) -> PersonsInput:
        return cls(np.zeros((0, 4)), np.zeros(0), [])

    def merged(self, other: PersonsInput) -> PersonsInput:
        """This stamp's boxes and another source's of the same stamp (ROS4HRI: one message per body)."""
        keys = None if self.keys is None or other.keys is None else self.keys + other.keys
        return PersonsInput(np.concatenate([self.boxes, other.boxes]), np.concatenate([self.scores, other.scores]),
                            keys, self.normalized, self.rejected + other.rejected)  # fmt: skip

    def in_pixels(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray, list[str] | None, int]:
        """-> (boxes in pixels of a width x height image, clipped to it, scores, keys, rejected): boxes
        that are not finite, have no area, lie wholly outside the image, or (normalised) leave [0, 1]
        are dropped."""
        b = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        ok = np.isfinite(b).all(axis=1) & (b[:, 2] > 0) & (b[:, 3] > 0) & np.isfinite(scores)
        if self.normalized:
            with np.errstate(invalid="ignore"):
                ok &= (b[:, :2] >= 0).all(axis=1) & (b[:, 0] + b[:, 2] <= 1 + 1e-6) & (b[:, 1] + b[:, 3] <= 1 + 1e-6)
            b = b * [width, height, width, height]
        with np.errstate(invalid="ignore"):
            ok &= (b[:, 0] < width) & (b[:, 1] < height) & (b[:, 0] + b[:, 2] > 0) & (b[:, 1] + b[:, 3] > 0)
        keys = None if self.keys is None else [k for k, good in zip(self.keys, ok, strict=True) if good]
        return clip_to_image(b[ok], width, height), scores[ok], keys, self.rejected + int((~ok).sum())


@dataclass
class ExternalIds:
    """Upstream id strings <-> small integers, stable while the id keeps appearing."""

    _ids: collections.OrderedDict = field(default_factory=collections.OrderedDict)  # key -> int
    _keys: dict = field(default_factory=dict)  # int -> key
    _next: int = 1

    def ints(self, keys: list[str] | None) -> list[int | None] | None:
        """None for an untracked detection (''); the same integer for the same key."""
        if keys is None:
            return None
        out = []
        for k in keys:
            if not k:
                out.append(None)
                continue
            if k not in self._ids:
                self._ids[k] = self._next
                self._keys[self._next] = k
                self._next += 1
                while len(self._ids) > IDS_KEPT:
                    _, old = self._ids.popitem(last=False)
                    self._keys.pop(old, None)
            self._ids.move_to_end(k)
            out.append(self._ids[k])
        return out

    def key(self, n: int | None) -> str:
        """The upstream id string of an integer from ``ints`` ('' for None or one forgotten)."""
        return "" if n is None else self._keys.get(n, "")
