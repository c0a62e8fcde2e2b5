"""The default travel-time model: great-circle distance × detour factor, at a speed by distance band.

Pure Python so booking (capacity checks) and dispatch (the optimizer) agree on travel times without
a network call. Real road-network providers (Amazon Location Service, OSRM) plug in on the dispatch
side; this model is their fallback and the one the capacity ledger uses.
"""
from __future__ import annotations

import math
from typing import Sequence

EARTH_RADIUS_KM = 6371.0088
DEFAULT_PROFILE = {"detour_factor": 1.35, "speed_bands_kmh": [[2, 20], [10, 35], [None, 60]]}
# Parking and walking to the door: a fixed cost of every drive between two different addresses.
DEFAULT_OVERHEAD_S = 180


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def road_km(a: tuple[float, float], b: tuple[float, float], profile: dict | None = None) -> float:
    p = profile or DEFAULT_PROFILE
    return haversine_km(a, b) * float(p.get("detour_factor", DEFAULT_PROFILE["detour_factor"]))


def duration_s(a: tuple[float, float], b: tuple[float, float], profile: dict | None = None) -> int:
    """Driving seconds from a to b: the road distance is driven band by band (slow in town, faster
    on longer legs), plus a fixed parking overhead when the places differ."""
    p = profile or DEFAULT_PROFILE
    km = road_km(a, b, p)
    if km < 1e-6:
        return 0
    seconds, done = 0.0, 0.0
    for upto, kmh in p.get("speed_bands_kmh", DEFAULT_PROFILE["speed_bands_kmh"]):
        span = km - done if upto is None else min(km, float(upto)) - done
        if span <= 0:
            continue
        seconds += span / float(kmh) * 3600.0
        done += span
        if done >= km:
            break
    return int(round(seconds)) + int(p.get("overhead_s", DEFAULT_OVERHEAD_S))


def duration_matrix(points: Sequence[tuple[float, float]], profile: dict | None = None) -> list[list[int]]:
    """Square matrix of driving seconds between (lat, lon) points."""
    return [[0 if i == j else duration_s(a, b, profile) for j, b in enumerate(points)]
            for i, a in enumerate(points)]
