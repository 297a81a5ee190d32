"""Step 5's app on waitress over given engines, and the clients that load it (benchmarks/generation_speed.py)."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request


class Server:
    """Step 5's app (the solution's routes) on waitress, over the given engine(s), on a free loopback port."""

    def __init__(self, engines: dict, batch_window: float, timeout: float = 600):
        from waitress.server import create_server

        from aurore import web
        from aurore.config import PACKAGE_DIR
        from aurore.web.serving import GenerationService
        from aurore.workshop.exercises import load_script

        served = {key: web.Served(GenerationService(engine, timeout=timeout, batch_window=batch_window),
                                  web.ModelInfo(key, key == "gpt2")) for key, engine in engines.items()}
        app = load_script(PACKAGE_DIR / "5_flask_solution.py").create_app(web.Models(served))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = create_server(app, host="127.0.0.1", port=self.port, threads=40)
        threading.Thread(target=self.server.run, daemon=True).start()

    def post(self, path: str, body: dict, timeout: float = 600) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def first_event(self, body: dict) -> float:
        """Seconds from the request to the first streamed texts."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/generate/stream", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as response:
            response.readline()  # "event: texts"
            first = time.perf_counter() - start
            response.read()
        return first

    def load(self, clients: int, requests_per_client: int, body_for) -> dict:
        """`clients` threads, each sending its requests one after the other; latency percentiles and throughput."""
        latencies: list[float] = []
        refused = []

        def client(index: int) -> None:
            for r in range(requests_per_client):
                start = time.perf_counter()
                status, _ = self.post("/api/generate", body_for(index, r))
                (latencies if status == 200 else refused).append(time.perf_counter() - start)

        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        latencies.sort()
        return {"clients": clients, "p50_s": statistics.median(latencies) if latencies else float("nan"),
                "p95_s": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else float("nan"),
                "requests_per_s": len(latencies) / elapsed, "answered": len(latencies), "busy_503": len(refused)}

    def steady(self, clients: int, seconds: float, body_for, ramp: float = 1.0) -> dict:
        """`clients` threads sending requests one after the other for `ramp + seconds`; the throughput counts the
        requests completed after the ramp (a steady state: a room keeps sending, while a fixed number of requests
        ends with a tail where the last long requests run nearly alone)."""
        done: list[tuple[float, int]] = []  # (completion time, new tokens asked)
        start = time.perf_counter()
        window = (start + ramp, start + ramp + seconds)

        def client(index: int) -> None:
            r = 0
            while time.perf_counter() < window[1]:
                body = body_for(index, r)
                status, _ = self.post("/api/generate", body)
                if status == 200:
                    done.append((time.perf_counter(), body["max_new_tokens"]))
                r += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        counted = [tokens for at, tokens in done if window[0] <= at < window[1]]
        return {"clients": clients, "requests_per_s": len(counted) / seconds, "tokens_per_s": sum(counted) / seconds,
                "answered": len(counted)}

    def close(self) -> None:
        time.sleep(0.5)  # let waitress finish closing the last connections before its sockets go
        self.server.close()
