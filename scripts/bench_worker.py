#!/usr/bin/env python3
"""Benchmarks mesh-worker against the broker at AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/).

1. consume -> ack: N no-op jobs (mesh-worker --noop-jobs) against a plain pika consumer that acks each
   message, same broker, same prefetch, same pre-filled queue, in one run: msg/s each and the ratio.
2. end to end: M real jobs (photos served from 127.0.0.1, results read from the result exchange) through
   mesh-worker with the chosen engine: jobs per minute.

Build first:  swift build -c release --product mesh-worker
Run:          /opt/venv/bin/python scripts/bench_worker.py [--binary .build/release/mesh-worker]
              [--messages 20000] [--prefetch 2] [--repeat 3] [--jobs 60] [--engine pipeline|box]
              [--weights DIR] [--json out.json]
The consume -> ack runs alternate pika and mesh-worker --repeat times; the medians are reported.
"""
import argparse
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "WorkerTestSupport" / "Fixtures"
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def connect():
    return pika.BlockingConnection(pika.URLParameters(AMQP_URL))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefill(queue, count, body_of):
    conn = connect()
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    for i in range(count):
        ch.basic_publish(exchange="", routing_key=queue, body=body_of(i), properties=props)
    # A round trip so everything above has reached the broker.
    while ch.queue_declare(queue=queue, durable=True, passive=True).method.message_count < count:
        time.sleep(0.05)
    conn.close()


def delete_queues(names):
    conn = connect()
    ch = conn.channel()
    for name in names:
        ch.queue_delete(queue=name)
    conn.close()


def pika_consume(queue, count, prefetch):
    """Plain pika consumer: manual ack per message. Returns msg/s between the first and last ack."""
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    state = {"n": 0, "first": None, "last": None}

    def on_message(channel, method, properties, body):
        channel.basic_ack(delivery_tag=method.delivery_tag)
        now = time.perf_counter()
        if state["first"] is None:
            state["first"] = now
        state["n"] += 1
        state["last"] = now
        if state["n"] >= count:
            channel.stop_consuming()

    ch.basic_consume(queue=queue, on_message_callback=on_message)
    ch.start_consuming()
    conn.close()
    return (count - 1) / (state["last"] - state["first"])


def metric(port, name):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def worker_env(prefix, port, uploads, pool, extra):
    env = dict(os.environ)
    env.update({
        "AMQP_URL": AMQP_URL, "WORKER_QUEUE": f"{prefix}.upload.queue", "WORKER_DLX": f"{prefix}.upload.dlx",
        "WORKER_DEAD_QUEUE": f"{prefix}.upload.dead", "WORKER_RESULT_EXCHANGE": f"{prefix}.result",
        "WORKER_POOL_SIZE": str(pool), "WORKER_HTTP_PORT": str(port), "WORKER_HTTP_HOST": "127.0.0.1",
        "UPLOADS_ROOT": str(uploads), "WORKER_LOG_LEVEL": "warning", "WORKER_RETRY_DELAYS": "5",
    })
    env.update(extra)
    return env


def cleanup_topology(prefix):
    conn = connect()
    ch = conn.channel()
    for q in [f"{prefix}.upload.queue", f"{prefix}.upload.dead", f"{prefix}.upload.queue.retry.5000ms", f"{prefix}.events"]:
        ch.queue_delete(queue=q)
    for x in [f"{prefix}.upload.dlx", f"{prefix}.result"]:
        ch.exchange_delete(exchange=x)
    conn.close()


def worker_consume(binary, count, prefetch):
    """mesh-worker --noop-jobs on a pre-filled queue: msg/s between the first and the last ack,
    read from its /metrics every 5 ms."""
    prefix = "bench-" + uuid.uuid4().hex[:8]
    queue = f"{prefix}.upload.queue"
    prefill(queue, count, lambda i: b'{"imageUrl":"http://127.0.0.1/x.jpg","memberId":1,"timestamp":0}')
    port = free_port()
    uploads = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    env = worker_env(prefix, port, uploads, prefetch, {"WORKER_NOOP_JOBS": "1"})
    proc = subprocess.Popen([binary], env=env)
    first = last = None
    try:
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            done = metric(port, 'mesh_worker_jobs_total{outcome="succeeded"}')
            now = time.perf_counter()
            if done is not None and done >= 1 and first is None:
                first = (now, done)
            if done is not None and done >= count:
                last = (now, done)
                break
            time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(uploads, ignore_errors=True)
        cleanup_topology(prefix)
    if first is None or last is None:
        raise SystemExit("mesh-worker did not finish the no-op jobs")
    return (last[1] - first[1]) / (last[0] - first[0])


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, directory_override=None, **kwargs):
        super().__init__(*args, directory=directory_override or str(FIXTURES), **kwargs)

    def log_message(self, *args):
        pass


def end_to_end(binary, jobs, pool, engine_args, photo_dir):
    """M jobs through download + engine + files + result event + ack; jobs per minute."""
    handler = lambda *a, **k: QuietHandler(*a, directory_override=str(photo_dir), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    photos = sorted(p.name for p in Path(photo_dir).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    prefix = "bench-" + uuid.uuid4().hex[:8]
    conn = connect()
    ch = conn.channel()
    ch.exchange_declare(exchange=f"{prefix}.result", exchange_type="topic", durable=True)
    ch.queue_declare(queue=f"{prefix}.events", durable=True)
    ch.queue_bind(queue=f"{prefix}.events", exchange=f"{prefix}.result", routing_key="#")
    conn.close()
    now_ms = int(time.time() * 1000)
    prefill(f"{prefix}.upload.queue", jobs, lambda i: json.dumps({
        "imageUrl": f"http://127.0.0.1:{server.server_address[1]}/{photos[i % len(photos)]}",
        "memberId": 10_000 + i, "timestamp": now_ms}).encode())
    uploads = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    port = free_port()
    env = worker_env(prefix, port, uploads, pool, {"WORKER_ALLOW_CIDRS": "127.0.0.0/8"})
    start = time.perf_counter()
    proc = subprocess.Popen([binary] + engine_args, env=env)
    statuses = {}
    try:
        conn = connect()
        ch = conn.channel()
        deadline = time.time() + 1800
        while len(statuses) < jobs and time.time() < deadline and proc.poll() is None:
            method, _, body = ch.basic_get(queue=f"{prefix}.events", auto_ack=True)
            if method is None:
                time.sleep(0.01)
                continue
            event = json.loads(body)
            statuses[event.get("memberId")] = event["status"]
        elapsed = time.perf_counter() - start
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=120)
        server.shutdown()
        shutil.rmtree(uploads, ignore_errors=True)
        cleanup_topology(prefix)
    succeeded = sum(1 for s in statuses.values() if s == "succeeded")
    return {"jobs": jobs, "succeeded": succeeded, "seconds": elapsed, "jobs_per_minute": succeeded / elapsed * 60}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(ROOT / ".build" / "release" / "mesh-worker"))
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--prefetch", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeat", type=int, default=3, help="alternating consume->ack runs of each; medians reported")
    ap.add_argument("--jobs", type=int, default=60)
    ap.add_argument("--engine", default="pipeline", help="passed to mesh-worker --engine (pipeline or box)")
    ap.add_argument("--weights", help="passed to mesh-worker --weights (pipeline engine)")
    ap.add_argument("--photos", default=str(FIXTURES), help="folder of JPEG/PNG photos served to the end-to-end jobs")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"{args.binary} not found: swift build -c release --product mesh-worker")

    pika_rates, worker_rates = [], []
    for _ in range(args.repeat):
        queue = "bench-pika-" + uuid.uuid4().hex[:8]
        prefill(queue, args.messages, lambda i: b'{"imageUrl":"http://127.0.0.1/x.jpg","memberId":1,"timestamp":0}')
        pika_rates.append(pika_consume(queue, args.messages, args.prefetch))
        delete_queues([queue])
        worker_rates.append(worker_consume(args.binary, args.messages, args.prefetch))
    pika_rate, worker_rate = statistics.median(pika_rates), statistics.median(worker_rates)
    print(f"consume->ack, {args.messages} messages, prefetch {args.prefetch}, median of {args.repeat}:")
    print(f"  pika consumer       {pika_rate:10.0f} msg/s   runs: {', '.join(f'{r:.0f}' for r in pika_rates)}")
    print(f"  mesh-worker (no-op) {worker_rate:10.0f} msg/s   runs: {', '.join(f'{r:.0f}' for r in worker_rates)}")
    print(f"  ratio worker/pika   {worker_rate / pika_rate:10.2f}")

    engine_args = ["--engine", args.engine] + (["--weights", args.weights] if args.weights else [])
    e2e = end_to_end(args.binary, args.jobs, args.prefetch, engine_args, args.photos)
    print(f"end to end, engine {args.engine}, pool {args.prefetch}, photos {args.photos}: "
          f"{e2e['succeeded']}/{e2e['jobs']} jobs in "
          f"{e2e['seconds']:.1f} s = {e2e['jobs_per_minute']:.0f} jobs/min")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "messages": args.messages, "prefetch": args.prefetch, "pika_msg_per_s": pika_rate,
            "worker_msg_per_s": worker_rate, "pika_runs": pika_rates, "worker_runs": worker_rates, "ratio": worker_rate / pika_rate, "end_to_end": e2e,
            "engine": args.engine}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
