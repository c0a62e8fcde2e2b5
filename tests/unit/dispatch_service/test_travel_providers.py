"""Road-network travel-time providers: OSRM over HTTP, Amazon Location via boto3, their caches and
their fallback to the travel model."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.stub import ANY, Stubber

from homevisits import travel
from dispatch.travel_providers import (AmazonLocationProvider, LruCache, ModelProvider, OsrmProvider,
                                       provider_for)

PTS = [(59.3326, 18.0649), (59.3400, 18.0700), (59.3500, 18.1000)]
OVERHEAD = travel.DEFAULT_OVERHEAD_S


def fake_seconds(a, b) -> float:
    """A deterministic 'road' duration: 1000 s per degree of Manhattan distance, plus 60 s."""
    return round(abs(a[0] - b[0]) * 1000 + abs(a[1] - b[1]) * 1000 + 60, 1)


class OsrmServer:
    """A tiny OSRM table service on 127.0.0.1 speaking the real response format."""

    def __init__(self, fail: bool = False, null_pairs=()):
        self.requests: list[str] = []
        self.fail, self.null_pairs = fail, set(null_pairs)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                server.requests.append(self.path)
                if server.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                parts = urlsplit(self.path)
                coords_part = parts.path.split("/table/v1/driving/")[1]
                coords = [tuple(map(float, c.split(","))) for c in coords_part.split(";")]
                q = parse_qs(parts.query)
                assert q["annotations"] == ["duration"]
                src = [int(i) for i in q["sources"][0].split(";")]
                dst = [int(i) for i in q["destinations"][0].split(";")]
                rows = []
                for i in src:
                    row = []
                    for j in dst:
                        a, b = (coords[i][1], coords[i][0]), (coords[j][1], coords[j][0])  # lon,lat → lat,lon
                        row.append(None if (a, b) in server.null_pairs else fake_seconds(a, b))
                    rows.append(row)
                body = json.dumps({"code": "Ok", "durations": rows,
                                   "sources": [{"location": list(coords[i])} for i in src],
                                   "destinations": [{"location": list(coords[j])} for j in dst]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def expected(points):
    return [[0 if a == b else int(round(fake_seconds(a, b))) + OVERHEAD for b in points] for a in points]


def test_osrm_table_durations_plus_parking_overhead():
    with OsrmServer() as osrm:
        m = OsrmProvider(osrm.url, cache=LruCache()).matrix(PTS)
    assert m == expected(PTS)
    assert "annotations=duration" in osrm.requests[0] and osrm.requests[0].startswith("/table/v1/driving/18.064900,59.332600;")


def test_osrm_is_chunked_to_the_servers_table_size():
    pts = [(59.30 + i * 0.01, 18.00 + i * 0.005) for i in range(7)]
    with OsrmServer() as osrm:
        m = OsrmProvider(osrm.url, cache=LruCache(), max_coordinates=4).matrix(pts)
    assert m == expected(pts)
    assert len(osrm.requests) > 1


def test_osrm_legs_are_cached_in_memory():
    cache = LruCache()
    with OsrmServer() as osrm:
        OsrmProvider(osrm.url, cache=cache).matrix(PTS)
        n = len(osrm.requests)
        again = OsrmProvider(osrm.url, cache=cache).matrix(list(reversed(PTS)))
    assert n == 1 and len(osrm.requests) == 1
    assert again == expected(list(reversed(PTS)))


def test_osrm_failure_falls_back_to_the_model():
    with OsrmServer(fail=True) as osrm:
        m = OsrmProvider(osrm.url, cache=LruCache()).matrix(PTS)
    assert m == ModelProvider().matrix(PTS)


def test_an_unreachable_osrm_falls_back_to_the_model():
    m = OsrmProvider("http://127.0.0.1:9", cache=LruCache(), timeout_s=0.5).matrix(PTS)
    assert m == ModelProvider().matrix(PTS)


def test_a_pair_without_route_gets_the_models_estimate():
    with OsrmServer(null_pairs=[(PTS[0], PTS[2])]) as osrm:
        m = OsrmProvider(osrm.url, cache=LruCache()).matrix(PTS)
    assert m[0][2] == travel.duration_s(PTS[0], PTS[2])
    assert m[0][1] == expected(PTS)[0][1]


def geo_client():
    return boto3.client("geo-routes", region_name="eu-north-1", aws_access_key_id="x", aws_secret_access_key="x")


def location_response(origins, dests):
    return {"ErrorCount": 0, "PricingBucket": "Core", "RouteMatrix": [[{"Distance": 1000, "Duration": int(fake_seconds(o, d))} for d in dests]
                                             for o in origins],
            "RoutingBoundary": {"Geometry": {"Circle": {"Center": [18.06, 59.33], "Radius": 10000}}}}


def test_amazon_location_matrix_chunked_with_stubber():
    client = geo_client()
    provider = AmazonLocationProvider(client=client, cache=LruCache(), max_origins=2, max_destinations=2)
    with Stubber(client) as stub:
        for o in ([PTS[0], PTS[1]], [PTS[2]]):
            for d in ([PTS[0], PTS[1]], [PTS[2]]):
                stub.add_response("calculate_route_matrix", location_response(o, d), {
                    "Origins": [{"Position": [p[1], p[0]]} for p in o],
                    "Destinations": [{"Position": [p[1], p[0]]} for p in d],
                    "RoutingBoundary": ANY, "TravelMode": "Car"})
        m = provider.matrix(PTS)
        stub.assert_no_pending_responses()
    assert m == [[0 if a == b else int(fake_seconds(a, b)) + OVERHEAD for b in PTS] for a in PTS]


def test_amazon_location_error_falls_back_to_the_model():
    client = geo_client()
    with Stubber(client) as stub:
        stub.add_client_error("calculate_route_matrix", "ThrottlingException", http_status_code=429)
        m = AmazonLocationProvider(client=client, cache=LruCache()).matrix(PTS)
    assert m == ModelProvider().matrix(PTS)


def test_provider_is_chosen_by_environment(monkeypatch):
    from homevisits import settings
    from homevisits.regions import load_config
    region = load_config().region("stockholm")
    monkeypatch.delenv("TRAVEL_PROVIDER", raising=False)
    settings.reload()
    assert isinstance(provider_for(region), ModelProvider)
    monkeypatch.setenv("TRAVEL_PROVIDER", "osrm")
    monkeypatch.setenv("OSRM_URL", "http://127.0.0.1:5000")
    settings.reload()
    p = provider_for(region)
    assert isinstance(p, OsrmProvider) and p.profile == region.travel
    for name in ("amazon-location", "Amazon_Location "):
        monkeypatch.setenv("TRAVEL_PROVIDER", name)
        settings.reload()
        assert isinstance(provider_for(region), AmazonLocationProvider)


def test_an_unknown_provider_fails_the_cold_start(monkeypatch):
    """A typo in TRAVEL_PROVIDER is an error when the settings are read, not a silent fallback."""
    import pydantic

    from homevisits import settings
    monkeypatch.setenv("TRAVEL_PROVIDER", "osmr")
    with pytest.raises(pydantic.ValidationError, match="TRAVEL_PROVIDER"):
        settings.reload()


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_inputs(n):
    with OsrmServer() as osrm:
        m = OsrmProvider(osrm.url, cache=LruCache()).matrix(PTS[:n])
    assert m == [[0] * n for _ in range(n)] and osrm.requests == []
