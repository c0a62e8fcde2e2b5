"""Travel times for the optimizer: a `TravelTimeProvider` turns (lat, lon) points into a square
matrix of driving seconds.

- `ModelProvider` (the default): `homevisits.travel`, the same model the booking side's capacity
  check uses, so a plan never disagrees with what booking promised.
- `OsrmProvider`: an OSRM server's table service (`/table/v1/driving/...?annotations=duration`).
- `AmazonLocationProvider`: Amazon Location's `geo-routes` `CalculateRouteMatrix`.

Road-network providers cache each leg in memory (LRU keyed by points rounded to ~10 m) and, when
enabled, in OpsTable (items that expire after TRAVEL_CACHE_TTL_DAYS); any error falls back to the
model for the whole matrix, so a plan is always computed. They add the region's parking overhead
(`overhead_s`, 180 s by default) to every leg between two different places, as the model does.

Configuration (read when `provider_for` is called): TRAVEL_PROVIDER = model | osrm |
amazon-location; OSRM_URL; AMAZON_LOCATION_API_KEY (optional; else IAM), AMAZON_LOCATION_TRAVEL_MODE
(Car); TRAVEL_CACHE_DYNAMODB = true to use the OpsTable cache; TRAVEL_CACHE_TTL_DAYS (7).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections import OrderedDict
from typing import Protocol, Sequence

from homevisits import settings, travel

Point = tuple[float, float]  # (lat, lon)
logger = logging.getLogger(__name__)


class TravelTimeProvider(Protocol):
    def matrix(self, points: Sequence[Point]) -> list[list[int]]:
        """Square matrix of driving seconds between the points (lat, lon), 0 on the diagonal."""
        ...


class ModelProvider:
    """The default: great-circle distance with the region's detour factor and speed bands."""

    name = "model"

    def __init__(self, profile: dict | None = None):
        self.profile = profile or None

    def matrix(self, points: Sequence[Point]) -> list[list[int]]:
        return travel.duration_matrix(list(points), self.profile)


class LruCache:
    """A small thread-safe LRU of leg durations, shared by a provider's warm invocations."""

    def __init__(self, maxsize: int = 200_000):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def rounded(p: Point, digits: int = 4) -> tuple[float, float]:
    """A cache key for a point: 4 decimals is ~10 m, closer than two front doors."""
    return (round(float(p[0]), digits), round(float(p[1]), digits))


class DynamoDbLegCache:
    """Leg durations in OpsTable (pk `TRAVEL#{provider}`, sk `lat,lon>lat,lon`)."""

    def __init__(self, provider: str, ttl_days: float = 7.0):
        self.pk = f"TRAVEL#{provider}"
        self.ttl_s = int(ttl_days * 86400)

    @staticmethod
    def _sk(a, b) -> str:
        return f"{a[0]:.4f},{a[1]:.4f}>{b[0]:.4f},{b[1]:.4f}"

    def get_many(self, pairs) -> dict:
        from homevisits.persistence.dispatch import TravelCacheModel
        keys = {self._sk(a, b): (a, b) for a, b in pairs}
        out = {}
        now = time.time()
        for item in TravelCacheModel.batch_get([(self.pk, sk) for sk in keys]):
            if item.expires_at is not None and item.expires_at.timestamp() < now:
                continue
            out[keys[item.sk]] = int(item.seconds)
        return out

    def put_many(self, legs: dict) -> None:
        from datetime import datetime, timezone
        from homevisits.persistence.dispatch import TravelCacheModel
        expires = datetime.fromtimestamp(time.time() + self.ttl_s, tz=timezone.utc)
        with TravelCacheModel.batch_write() as batch:
            for (a, b), seconds in legs.items():
                batch.save(TravelCacheModel(self.pk, self._sk(a, b), seconds=int(seconds), expires_at=expires))


class RoadNetworkProvider:
    """Shared machinery of the road-network providers: caching, overhead, fallback.

    Subclasses implement `_fetch(origins, destinations) -> rows of seconds (None = no route)`."""

    name = "road"

    def __init__(self, profile: dict | None = None, *, cache: LruCache | None = None,
                 dynamodb_cache: DynamoDbLegCache | None = None):
        self.profile = profile or None
        self.fallback = ModelProvider(profile)
        self.cache = cache if cache is not None else LruCache()
        self.dynamodb_cache = dynamodb_cache
        self.overhead_s = int((profile or {}).get("overhead_s", travel.DEFAULT_OVERHEAD_S))

    def _fetch(self, origins: list[Point], destinations: list[Point]) -> list[list[float | None]]:
        raise NotImplementedError

    def matrix(self, points: Sequence[Point]) -> list[list[int]]:
        pts = [rounded(p) for p in points]
        uniq = list(dict.fromkeys(pts))
        try:
            legs = self._legs(uniq)
        except Exception as err:  # any provider failure: plan with the model rather than not at all
            logger.warning("travel provider %s failed, using the model: %s", self.name, type(err).__name__)
            return self.fallback.matrix(points)
        return [[0 if a == b else legs[(a, b)] for b in pts] for a in pts]

    def _legs(self, uniq: list[tuple[float, float]]) -> dict:
        legs: dict = {}
        missing = []
        for a in uniq:
            for b in uniq:
                if a == b:
                    continue
                v = self.cache.get((self.name, a, b))
                if v is None:
                    missing.append((a, b))
                else:
                    legs[(a, b)] = v
        if missing and self.dynamodb_cache is not None:
            try:
                found = self.dynamodb_cache.get_many(missing)
            except Exception as err:
                logger.warning("travel cache read failed: %s", type(err).__name__)
                found = {}
            for pair, v in found.items():
                legs[pair] = v
                self.cache.put((self.name, *pair), v)
            missing = [p for p in missing if p not in found]
        if not missing:
            return legs
        from_set, to_set = {a for a, _ in missing}, {b for _, b in missing}
        origins = [p for p in uniq if p in from_set]
        dests = [p for p in uniq if p in to_set]
        rows = self._fetch(origins, dests)
        fetched = {}
        for i, a in enumerate(origins):
            for j, b in enumerate(dests):
                if a == b:
                    continue
                raw = rows[i][j]
                if raw is None:  # no route between these two: the model's estimate
                    seconds = travel.duration_s(a, b, self.profile)
                else:
                    seconds = int(round(float(raw))) + self.overhead_s
                legs[(a, b)] = seconds
                self.cache.put((self.name, a, b), seconds)
                fetched[(a, b)] = seconds
        if fetched and self.dynamodb_cache is not None:
            try:
                self.dynamodb_cache.put_many(fetched)
            except Exception as err:
                logger.warning("travel cache write failed: %s", type(err).__name__)
        return legs


def _chunks(seq: list, size: int):
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


class OsrmProvider(RoadNetworkProvider):
    """OSRM's table service over HTTP. `max_coordinates` per request matches the server's
    `--max-table-size` (100 by default)."""

    name = "osrm"

    def __init__(self, base_url: str, profile: dict | None = None, *, osrm_profile: str = "driving",
                 max_coordinates: int = 100, timeout_s: float = 5.0, **kw):
        super().__init__(profile, **kw)
        self.base_url = base_url.rstrip("/")
        self.osrm_profile = osrm_profile
        self.max_coordinates = max(2, max_coordinates)
        self.timeout_s = timeout_s

    def _fetch(self, origins, destinations):
        half = self.max_coordinates // 2
        rows: list[list[float | None]] = [[None] * len(destinations) for _ in origins]
        for oi, ochunk in enumerate(_chunks(origins, half)):
            for di, dchunk in enumerate(_chunks(destinations, self.max_coordinates - len(ochunk))):
                block = self._table(ochunk, dchunk)
                for i, row in enumerate(block):
                    for j, v in enumerate(row):
                        rows[oi * half + i][di * (self.max_coordinates - len(ochunk)) + j] = v
        return rows

    def _table(self, origins, destinations) -> list[list[float | None]]:
        coords = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in list(origins) + list(destinations))
        n = len(origins)
        sources = ";".join(str(i) for i in range(n))
        dests = ";".join(str(n + j) for j in range(len(destinations)))
        url = (f"{self.base_url}/table/v1/{self.osrm_profile}/{coords}"
               f"?annotations=duration&sources={sources}&destinations={dests}")
        with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
            body = json.loads(resp.read())
        if body.get("code") != "Ok":
            raise RuntimeError(f"OSRM answered {body.get('code')}")
        durations = body["durations"]
        if len(durations) != n or any(len(r) != len(destinations) for r in durations):
            raise RuntimeError("OSRM table has the wrong shape")
        return durations


class AmazonLocationProvider(RoadNetworkProvider):
    """Amazon Location Service routes (`geo-routes` CalculateRouteMatrix), chunked to
    `max_origins` x `max_destinations` per call; positions are sent as [lon, lat]."""

    name = "amazon-location"

    def __init__(self, profile: dict | None = None, *, client=None, travel_mode: str = "Car",
                 api_key: str | None = None, max_origins: int = 15, max_destinations: int = 100, **kw):
        super().__init__(profile, **kw)
        self._client = client
        self.travel_mode = travel_mode
        self.api_key = api_key
        self.max_origins = max(1, max_origins)
        self.max_destinations = max(1, max_destinations)

    @property
    def client(self):
        if self._client is None:
            import boto3
            self._client = boto3.client("geo-routes")
        return self._client

    def _fetch(self, origins, destinations):
        rows: list[list[float | None]] = [[None] * len(destinations) for _ in origins]
        for oi, ochunk in enumerate(_chunks(origins, self.max_origins)):
            for di, dchunk in enumerate(_chunks(destinations, self.max_destinations)):
                params = {
                    "Origins": [{"Position": [lon, lat]} for lat, lon in ochunk],
                    "Destinations": [{"Position": [lon, lat]} for lat, lon in dchunk],
                    "RoutingBoundary": {"Geometry": {"AutoCircle": {}}},
                    "TravelMode": self.travel_mode,
                }
                if self.api_key:
                    params["Key"] = self.api_key
                resp = self.client.calculate_route_matrix(**params)
                for i, row in enumerate(resp["RouteMatrix"]):
                    for j, entry in enumerate(row):
                        if entry.get("Error") is None and entry.get("Duration") is not None:
                            rows[oi * self.max_origins + i][di * self.max_destinations + j] = entry["Duration"]
        return rows


_caches: dict[str, LruCache] = {}


def provider_for(region) -> TravelTimeProvider:
    """The configured provider for a region (its travel profile), as the settings say."""
    config = settings.get()
    profile = dict(getattr(region, "travel", None) or {}) or None
    kind = config.travel_provider
    ddb = DynamoDbLegCache(kind, config.travel_cache_ttl_days) if config.travel_cache_dynamodb else None
    if kind == "osrm" and config.osrm_url:
        return OsrmProvider(config.osrm_url, profile, cache=_caches.setdefault("osrm", LruCache()),
                            dynamodb_cache=ddb)
    if kind == "amazon-location":
        key = config.amazon_location_api_key
        return AmazonLocationProvider(profile, travel_mode=config.amazon_location_travel_mode,
                                      api_key=key.get_secret_value() if key else None,
                                      cache=_caches.setdefault("amazon-location", LruCache()),
                                      dynamodb_cache=ddb)
    return ModelProvider(profile)
