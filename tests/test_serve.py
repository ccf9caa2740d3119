"""`rsmi serve`: the real uvicorn server on loopback, talked to with a real HTTP client (httpx).

Every server runs on 127.0.0.1 on a socket bound to a free port, in a background thread (one
test: in a subprocess through the CLI), and is stopped by its fixture's finaliser; every HTTP
call has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from conftest import make_tiny_bert  # noqa: E402
from rsmi import Prediction, RSMIClassifier, RSMIConfig  # noqa: E402
from rsmi.inference import SEEDING  # noqa: E402
from rsmi.serve import MicroBatcher, ServeSettings, create_app  # noqa: E402
from rsmi.serve.server import GracefulServer, uvicorn_config  # noqa: E402

TIMEOUT = 60.0  # seconds, per HTTP call (a shared 2-core CI machine is slow)
NAMES = ["negative", "positive"]


# ---------------------------------------------------------------------- servers
class RunningServer:
    """A uvicorn server in a background thread on 127.0.0.1:<free port>."""

    def __init__(self, app) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn_config(app, "127.0.0.1", 0, log_level="warning", timeout_graceful_shutdown=10)
        self.server = GracefulServer(config, app)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start within 30 s")
            time.sleep(0.02)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=TIMEOUT)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        assert not self.thread.is_alive(), "the test server did not stop within 30 s"


@pytest.fixture
def start_server():
    servers: list[RunningServer] = []

    def start(app) -> RunningServer:
        servers.append(RunningServer(app))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    clf = RSMIClassifier(make_tiny_bert(tokenizer), tokenizer, RSMIConfig(max_length=16, k1=8), NAMES)
    return clf.save_pretrained(tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def reference(model_dir):
    """The same model loaded in-process: what the server's answers must equal."""
    return RSMIClassifier.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def server(model_dir):
    clf = RSMIClassifier.from_pretrained(model_dir)
    settings = ServeSettings(max_batch_texts=8, max_text_chars=200, max_wait_ms=5)
    running = RunningServer(create_app(clf, settings, model_dir=model_dir))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server):
    with server.client() as client:
        yield client


def expected_predict(clf: RSMIClassifier, texts: list[str], seed: int) -> dict:
    pred = clf.predict(texts, seed=seed)
    return {
        "labels": [int(x) for x in pred.labels],
        "label_names": [NAMES[int(x)] for x in pred.labels],
        "probs": [[round(float(p), 6) for p in row] for row in pred.probs],
        "second_step": [bool(x) for x in pred.second_step],
        "forward_passes": [int(x) for x in pred.forward_passes],
        "truncated": [bool(x) for x in pred.truncated],
    }


def subset(body: dict, keys) -> dict:
    return {k: body[k] for k in keys}


# ---------------------------------------------------------------------- the API
def test_health_and_metadata(http, model_dir):
    r = http.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    # The model's draws follow the text (seeding "text-v1"): concurrent requests are combined.
    assert r.json()["combines_requests"] is True

    meta = http.get("/metadata").json()
    saved = json.loads((Path(model_dir) / "rsmi.json").read_text(encoding="utf-8"))
    assert meta["method"] == "rsmi"
    assert meta["label_names"] == NAMES and meta["num_labels"] == 2
    assert meta["weights_sha256"] == saved["weights_sha256"] and meta["weights_sha256"]
    assert meta["rsmi_config"] == saved["config"]
    assert meta["rsmi_config"]["noise_std"] == 0.2 and meta["max_length"] == 16
    assert meta["limits"] == {"max_batch_texts": 8, "max_text_chars": 200, "max_certify_samples": 100_000}
    assert meta["micro_batching"]["combines_requests"] is True and meta["seeding"] == SEEDING
    import rsmi

    assert meta["rsmi_version"] == rsmi.__version__


def test_predict_equals_in_process_predict(http, reference, texts):
    batch = [texts[0], texts[2][:150], texts[3]]
    keys = ("labels", "label_names", "probs", "second_step", "forward_passes", "truncated")
    r = http.post("/predict", json={"texts": batch})  # the server's default seed, 0
    assert r.status_code == 200, r.text
    body = r.json()
    assert subset(body, keys) == expected_predict(reference, batch, seed=0)
    assert body["seed"] == 0 and body["classes"] == NAMES
    assert all(abs(sum(row) - 1) < 1e-4 for row in body["probs"])

    r = http.post("/predict", json={"texts": batch, "seed": 7})
    assert subset(r.json(), keys) == expected_predict(reference, batch, seed=7)
    # Reproducible: the same request, the same answer.
    assert http.post("/predict", json={"texts": batch, "seed": 7}).json() == r.json()


def test_concurrent_clients_get_their_own_answers_in_order(server, reference, texts):
    requests = [
        ([texts[i % len(texts)][:150], texts[(i + 3) % len(texts)][:150]], i) for i in range(8)
    ]

    def call(job):
        batch, seed = job
        with server.client() as client:
            return client.post("/predict", json={"texts": batch, "seed": seed})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(call, requests))
    keys = ("labels", "probs", "forward_passes")
    for (batch, seed), r in zip(requests, responses, strict=True):
        assert r.status_code == 200, r.text
        assert subset(r.json(), keys) == subset(expected_predict(reference, batch, seed), keys)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"texts=hello", 400, ["not JSON"]),
        (b"[1, 2]", 400, ["not an object"]),
        ({}, 400, ['"texts" is missing']),
        ({"texts": "one text"}, 400, ["is a string", "list of strings"]),
        ({"texts": []}, 400, ['"texts" is empty']),
        ({"texts": ["fine", 3]}, 400, ["texts[1] is a int", "strings only"]),
        ({"texts": ["fine", "  "]}, 400, ["texts[1] is empty"]),
        ({"texts": ["x"] * 9}, 413, ["9 texts", "limit of 8", "split"]),
        ({"texts": ["fine", "y" * 201]}, 413, ["texts[1] has 201 characters", "limit of 200"]),
        ({"texts": ["fine"], "seed": -1}, 400, ['"seed" is -1', "integer"]),
        ({"texts": ["fine"], "seed": "7"}, 400, ['"seed" is \'7\'']),
        ({"texts": ["fine"], "seed": True}, 400, ['"seed" is True']),
        ({"texts": ["fine"], "sed": 1}, 400, ["unknown field", "'sed'"]),
        # The library's own InputError (an RSMIError): a text with nothing the tokenizer keeps.
        ({"texts": ["fine", "\u200b"]}, 422, ["input 1", "no content"]),
    ],
)
def test_predict_errors_are_clear_4xx(http, body, status, words):
    if isinstance(body, bytes):
        r = http.post("/predict", content=body, headers={"content-type": "application/json"})
    else:
        r = http.post("/predict", json=body)
    assert r.status_code == status, r.text
    message = r.json()["error"]
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"n0": 0}, ['"n0" is 0', "[1, 100000]"]),
        ({"n": 10**6}, ['"n" is 1000000']),
        ({"n": 2.5}, ['"n" is 2.5']),
        ({"alpha": 0.7}, ['"alpha" is 0.7', "(0, 0.5)"]),
        ({"alpha": "small"}, ['"alpha" is \'small\'']),
    ],
)
def test_certify_parameter_errors(http, extra, words):
    r = http.post("/certify", json={"texts": ["fine"], **extra})
    assert r.status_code == 400, r.text
    for word in words:
        assert word in r.json()["error"]


def test_certify_answers_labels_and_radius(http, reference):
    batch = ["a gorgeous , witty , seductive movie .", "bad"]
    r = http.post("/certify", json={"texts": batch, "n0": 5, "n": 40, "alpha": 0.01, "seed": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    cert = reference.certify(batch, n0=5, n=40, alpha=0.01, seed=3)
    assert body["labels"] == [int(x) for x in cert.labels]
    assert body["radius"] == pytest.approx([float(x) for x in cert.radius])
    assert "hidden space" in body["radius_space"] and "not a number of words" in body["radius_space"]
    assert all(-1 <= label < 2 for label in body["labels"])
    assert all(sum(row) == 40 for row in body["counts"])
    assert [name == "ABSTAIN" for name in body["label_names"]] == [x == -1 for x in body["labels"]]
    assert all(0 <= r_ <= body["radius_ceiling"] + 1e-9 for r_ in body["radius"])
    assert (body["n0"], body["n"], body["alpha"], body["seed"]) == (5, 40, 0.01, 3)


def test_unexpected_error_is_a_generic_500(http, server, monkeypatch, caplog):
    clf = server.app.state.clf

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(clf, "predict", boom)
    r = http.post("/predict", json={"texts": ["fine"]})
    assert r.status_code == 500
    assert "internal error" in r.json()["error"] and "secret" not in r.json()["error"]


# ---------------------------------------------------------------------- micro-batching
class TextSeededFake:
    """A classifier whose answer for a text depends on (text, seed) only, like ``seeding="text-v1"``
    (for texts that occur once per call); it records every predict call."""

    seeding = SEEDING
    method = "rsmi"
    metadata: dict = {}

    def __init__(self, delay: float = 0.0) -> None:
        self.config = RSMIConfig()
        self.label_names = list(NAMES)
        self.calls: list[tuple[list[str], int]] = []
        self.delay = delay

    def predict(self, texts, *, seed=0):
        self.calls.append((list(texts), seed))
        time.sleep(self.delay)
        p = np.array([(zlib.crc32(f"{seed}:{t}".encode()) % 1000) / 1000 for t in texts])
        probs = np.stack([1 - p, p], axis=1)
        n = len(texts)
        return Prediction(
            labels=probs.argmax(1), probs=probs, votes=np.zeros((n, 2), dtype=np.int64),
            second_step=np.zeros(n, dtype=bool), forward_passes=np.full(n, 6),
            truncated=np.zeros(n, dtype=bool), label_names=list(NAMES),
        )


def test_batcher_combines_same_seed_requests_and_splits_in_order():
    fake = TextSeededFake(delay=0.05)
    jobs = [([f"text {i}", f"other {i}"], 0 if i < 6 else 1) for i in range(8)]

    async def main():
        batcher = MicroBatcher(fake, max_batch_texts=8, max_wait_ms=50)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.predict(t, s) for t, s in jobs)), batcher.stats
        finally:
            await batcher.close()

    results, stats = asyncio.run(main())
    for (batch, seed), pred in zip(jobs, results, strict=True):
        alone = TextSeededFake().predict(batch, seed=seed)
        assert np.array_equal(pred.probs, alone.probs) and len(pred) == 2
    # 6 requests of seed 0 (12 texts, at most 8 per call) and 2 of seed 1: 3 calls, not 8, and
    # no call mixes seeds or exceeds the limit.
    assert len(fake.calls) == 3 and stats.model_calls == 3 and stats.requests == 8
    assert all(len(texts) <= 8 for texts, _ in fake.calls)
    for texts, seed in fake.calls:
        assert all(int(t.split()[-1]) >= 6 for t in texts) == (seed == 1)


def test_batcher_never_combines_row_seeded_classifiers():
    fake = TextSeededFake()
    fake.seeding = "index"  # the answer of a text would depend on its row in the call

    async def main():
        batcher = MicroBatcher(fake, max_batch_texts=64, max_wait_ms=50)
        await batcher.start()
        try:
            await asyncio.gather(*(batcher.predict([f"t{i}"], 0) for i in range(5)))
        finally:
            await batcher.close()

    asyncio.run(main())
    assert [texts for texts, _ in fake.calls] == [[f"t{i}"] for i in range(5)]


def test_one_bad_request_does_not_fail_the_requests_it_was_combined_with():
    fake = TextSeededFake()
    original = fake.predict

    def predict(texts, *, seed=0):
        if "BAD" in texts:
            from rsmi.errors import InputError

            raise InputError(f"input {texts.index('BAD')} is bad")
        return original(texts, seed=seed)

    fake.predict = predict

    async def main():
        batcher = MicroBatcher(fake, max_batch_texts=64, max_wait_ms=50)
        await batcher.start()
        try:
            return await asyncio.gather(
                batcher.predict(["a", "b"], 0), batcher.predict(["c", "BAD"], 0),
                batcher.predict(["d"], 0), return_exceptions=True,
            )
        finally:
            await batcher.close()

    good, bad, other = asyncio.run(main())
    assert len(good) == 2 and len(other) == 1
    assert str(bad) == "input 1 is bad"  # its own index, not the combined call's


def test_server_combines_concurrent_requests_when_seeding_follows_the_text(start_server):
    fake = TextSeededFake(delay=0.2)
    running = start_server(create_app(fake, ServeSettings(max_batch_texts=64, max_wait_ms=100)))
    requests = [([f"review {i}", f"another {i}"], 5) for i in range(8)]

    def call(job):
        with running.client() as client:
            return client.post("/predict", json={"texts": job[0], "seed": job[1]})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(call, requests))
    for (batch, seed), r in zip(requests, responses, strict=True):
        assert r.status_code == 200, r.text
        alone = TextSeededFake().predict(batch, seed=seed)
        assert r.json()["probs"] == [[round(float(p), 6) for p in row] for row in alone.probs]
    assert len(fake.calls) < len(requests)
    with running.client() as client:
        health = client.get("/health").json()
    assert health["combines_requests"] is True and health["combined_calls"] >= 1


# Requests of one seed on the real model: some share a text ("bad"), one repeats a text inside
# itself ("ok", "ok": its second copy is occurrence 1 of "ok", alone or combined).
SAME_SEED_REQUESTS = [
    ["a gorgeous , witty , seductive movie .", "bad"],
    ["ok", "ok", "good fun"],
    ["bad"],
    ["the acting is uneven but the story holds up"],
    ["an utterly charming and hilarious film", "bad", "dull"],
    ["it's a tired , predictable waste of time"],
]


def test_batcher_combined_calls_on_the_real_model_answer_as_single_calls(reference):
    """The real classifier is combined (seeding "text-v1") and every request gets exactly what
    ``predict`` gives it alone; requests sharing a text with the call wait for another call."""
    calls: list[list[str]] = []
    original = reference.predict

    class Recording:
        seeding, label_names = reference.seeding, reference.label_names

        def predict(self, texts, *, seed=0):
            calls.append(list(texts))
            return original(texts, seed=seed)

    async def main():
        batcher = MicroBatcher(Recording(), max_batch_texts=64, max_wait_ms=50)
        assert batcher.combine is True
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.predict(t, 3) for t in SAME_SEED_REQUESTS))
        finally:
            await batcher.close()

    results = asyncio.run(main())
    for texts, pred in zip(SAME_SEED_REQUESTS, results, strict=True):
        alone = reference.predict(texts, seed=3)
        # The same draws; only float rounding of differently padded batches (~1e-7) may differ.
        np.testing.assert_allclose(pred.probs, alone.probs, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(pred.votes, alone.votes)
        np.testing.assert_array_equal(pred.labels, alone.labels)
        np.testing.assert_array_equal(pred.forward_passes, alone.forward_passes)
    assert len(calls) < len(SAME_SEED_REQUESTS)  # combined ...
    assert all(len(set(c) - {"ok"}) == len(c) - c.count("ok") for c in calls)  # ... "bad" once
    assert any(len(c) > 3 for c in calls)


def test_server_combines_requests_on_the_real_model_and_answers_as_predict(
    start_server, model_dir, reference
):
    clf = RSMIClassifier.from_pretrained(model_dir)
    running = start_server(create_app(clf, ServeSettings(max_batch_texts=16, max_wait_ms=300)))
    barrier = threading.Barrier(len(SAME_SEED_REQUESTS))

    def call(texts):
        with running.client() as client:
            barrier.wait(timeout=TIMEOUT)
            return client.post("/predict", json={"texts": texts, "seed": 9})

    with ThreadPoolExecutor(max_workers=len(SAME_SEED_REQUESTS)) as pool:
        responses = list(pool.map(call, SAME_SEED_REQUESTS))
    keys = ("labels", "second_step", "forward_passes")
    for texts, r in zip(SAME_SEED_REQUESTS, responses, strict=True):
        assert r.status_code == 200, r.text
        expected = expected_predict(reference, texts, 9)
        assert subset(r.json(), keys) == subset(expected, keys)
        assert np.allclose(r.json()["probs"], expected["probs"], rtol=0, atol=2e-6)
    with running.client() as client:
        health = client.get("/health").json()
    assert health["combines_requests"] is True and health["combined_calls"] >= 1


# ---------------------------------------------------------------------- shutdown
def test_shutdown_finishes_in_flight_requests_and_refuses_new_ones(start_server):
    fake = TextSeededFake(delay=1.0)
    running = start_server(create_app(fake, ServeSettings(max_wait_ms=0)))
    with ThreadPoolExecutor(max_workers=1) as pool:
        with running.client() as client:
            in_flight = pool.submit(client.post, "/predict", json={"texts": ["slow one"]})
            deadline = time.monotonic() + 10
            while not fake.calls and time.monotonic() < deadline:
                time.sleep(0.01)
            assert fake.calls, "the request never reached the model"
            running.app.state.batcher.refuse_new()  # what a stop signal does first
            r = client.post("/predict", json={"texts": ["late"]})
            assert r.status_code == 503 and "shutting down" in r.json()["error"]
            assert r.headers["retry-after"] == "1"
            assert client.get("/health").status_code == 503
            running.server.handle_exit(signal.SIGTERM, None)
            done = in_flight.result(timeout=TIMEOUT)
    assert done.status_code == 200 and len(done.json()["labels"]) == 1
    running.thread.join(timeout=30)
    assert not running.thread.is_alive()


# ---------------------------------------------------------------------- the command line
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serve_answers_and_stops_on_sigterm(model_dir, reference):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rsmi.cli.main", "serve", "--model", str(model_dir),
         "--port", str(port), "--max-batch-texts", "4", "--seed", "11", "--threads", "1",
         "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate(timeout=10)
            assert time.monotonic() < deadline, "rsmi serve did not start within 300 s"
            time.sleep(0.2)
        r = httpx.post(url + "/predict", json={"texts": ["bad", "good fun"]}, timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["seed"] == 11
        assert r.json()["labels"] == expected_predict(reference, ["bad", "good fun"], 11)["labels"]
        r = httpx.post(url + "/predict", json={"texts": ["x"] * 5}, timeout=TIMEOUT)
        assert r.status_code == 413 and "limit of 4" in r.json()["error"]
        proc.send_signal(signal.SIGTERM)
        # uvicorn finishes the shutdown, then re-raises the signal so that the process ends
        # the way a supervisor expects of SIGTERM.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        assert "Traceback" not in proc.communicate(timeout=10)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_cli_serve_bad_model_is_one_line(tmp_path, capsys):
    from rsmi.cli.main import main

    assert main(["serve", "--model", str(tmp_path / "missing"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "rsmi serve: error:" in err and "no such directory" in err
    assert main(["serve", "--model", str(tmp_path), "--workers", "0"]) == 2
    assert "--workers 0" in capsys.readouterr().err
