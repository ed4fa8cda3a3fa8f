"""Which frames a forward decoding pass may leave undecoded: the ones no query picks.

A window read picks, for each sorted query time q, the last frame whose presentation time is <= q
(timeline.py). A frame at time t is therefore picked only when some query lies in [t, t_next), t_next
being the next frame's time. When a packet's time t is known, and the container has already shown a
packet whose time s satisfies t < s <= q (q = the first query >= t), the frame at t is picked by no
query: the frame at s (or a later one before q) is on screen at q, and no query falls between t and s.
Such a frame may be skipped, and the decoder is told so with `skip_frame = NONREF`: FFmpeg then
drops it only if no other frame references it (a B-frame that is not a reference), so the frames it
does output are bit-identical to a full decode (a skipped frame influences nothing). Reference frames
are decoded whatever we say: skipping them would corrupt the frames that predict from them.

The earliest frame of a decoding segment is never skipped (queries before it take it, and a seek
lands on a keyframe, which is a reference anyway), nor is a frame whose time is unknown.

Savings on the shared media (H.264 with B-frames: x264's defaults, `avssl prepare`): 35-65 % of the
frames of a stream are non-reference; at 8-16 output fps from 25-30 fps sources nearly all of those
that precede or lie inside a window are skipped.
"""

from __future__ import annotations

import bisect

import numpy as np


class UnpickedFrames:
    """Tells, packet by packet, whether the frame of a packet is picked by no query.

    `queries`: sorted query times (seconds, float64 [Q]). `note(time)` records the presentation time of
    a demuxed packet (in any order: packets arrive in decoding order); `restart()` forgets them after a
    seek. `unpicked(time)` is the test of the module docstring on the times noted so far.
    """

    def __init__(self, queries: np.ndarray):
        self.queries = np.asarray(queries, dtype=np.float64)
        self.times: list[float] = []  # sorted presentation times of the segment's packets

    def restart(self) -> None:
        self.times.clear()

    def note(self, time: float) -> None:
        bisect.insort(self.times, time)

    def unpicked(self, time: float) -> bool:
        first_query = int(np.searchsorted(self.queries, time, side="left"))  # first query >= time
        earlier = bisect.bisect_left(self.times, time)
        if earlier == 0:
            return False  # the earliest frame of the segment: queries before it take it
        if first_query == len(self.queries):
            return True  # every query lies before this frame, and an earlier frame answers them
        later = bisect.bisect_right(self.times, time)
        return later < len(self.times) and self.times[later] <= self.queries[first_query]
