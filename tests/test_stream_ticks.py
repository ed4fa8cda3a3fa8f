"""StreamTicks: integer time-base arithmetic must give exactly what the Fraction arithmetic gives."""

from __future__ import annotations

import random
from fractions import Fraction

from avssl.media.decode.pyav_container import StreamTicks, seconds

TIME_BASES = (Fraction(1, 12800), Fraction(1, 90000), Fraction(1, 15360), Fraction(1001, 30000),
              Fraction(1, 44100), Fraction(1, 1000), Fraction(1, 25))


def test_seconds_and_ticks_equal_fraction_arithmetic():
    rng = random.Random(0)
    for time_base in TIME_BASES:
        ticks = StreamTicks(time_base)
        for _ in range(2000):
            stamp = rng.randrange(-10**6, 10**9)
            assert ticks.seconds(stamp) == float(stamp * time_base) == seconds(stamp, time_base)
            time = rng.uniform(-5.0, 3600.0)
            assert ticks.stamp_at(time) == int(time / time_base)
        # Frame-exact times (pts on a 16 fps grid) round-trip as the Fraction path does.
        for k in range(200):
            stamp = int(Fraction(k, 16) / time_base)
            assert ticks.seconds(stamp) == float(stamp * time_base)
