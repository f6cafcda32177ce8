"""보고서를 보내는 POST가 이어지는 동안 GET /health 는 얼마나 걸리나: async def 엔드포인트 대 def 엔드포인트.

    python -m benchmarks.web_latency [-n 20] [--concurrency 4] [--delay 0.3] [--json PATH]

practice16의 워커 하나와 웹 서버 하나를 띄운다. 웹 서버만 느린 브로커(playground/slow_proxy.py, 브로커의 답을
--delay 초 늦게 전한다)에 붙는다. 경우마다 --concurrency 개의 스레드가 POST를 쉬지 않고 보내는 동안 GET /health 를
n 번 보내 응답 시간을 잰다. "blocking" 은 POST /reports/blocking(async def 안에서 delay()), "fixed" 는 POST
/reports(def 엔드포인트)다. asyncio.run() 한 번의 비용(이벤트 루프를 만들고 닫는 데 드는 시간)도 따로 잰다.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time

import httpx

import global_config
from benchmarks import EXIT_SERVICES_DOWN, print_table, services_down, summarize, write_json
from course import needs_of
from playground.lessons import purge
from playground.slow_proxy import DELAY_SECONDS, SlowProxy
from playground.workers import WebServer, Worker, free_port, running

LESSON = "practice16"
TIMEOUT_SECONDS = 60
VARIANTS = {"blocking": "/reports/blocking", "fixed": "/reports"}
ASYNCIO_RUN_CALLS = 200
WARM_UP_SECONDS = 1.0  # POST를 보내는 스레드들이 연결하고 보내기 시작하기까지 기다린다
HEALTH_INTERVAL_SECONDS = 0.05  # GET /health 사이의 간격. 재는 때가 POST들의 주기와 겹치지 않게 흩는다


def health_during_posts(base_url: str, path: str, n: int, concurrency: int) -> list[float]:
    stop = threading.Event()

    def keep_posting() -> None:
        with httpx.Client(base_url=base_url, timeout=TIMEOUT_SECONDS) as poster:
            while not stop.is_set():
                poster.post(path, json={"pages": 1}).raise_for_status()

    posters = [threading.Thread(target=keep_posting, daemon=True) for _ in range(concurrency)]
    samples = []
    with httpx.Client(base_url=base_url, timeout=TIMEOUT_SECONDS) as checker:
        for poster in posters:
            poster.start()
        time.sleep(WARM_UP_SECONDS)
        try:
            for _ in range(n):
                time.sleep(HEALTH_INTERVAL_SECONDS)
                started = time.monotonic()
                checker.get("/health").raise_for_status()
                samples.append(time.monotonic() - started)
        finally:
            stop.set()
            for poster in posters:
                poster.join(TIMEOUT_SECONDS)
    return samples


async def _noop() -> None:
    await asyncio.sleep(0)


def asyncio_run_cost(calls: int = ASYNCIO_RUN_CALLS) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.monotonic()
        asyncio.run(_noop())
        samples.append(time.monotonic() - started)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.web_latency", description=__doc__)
    parser.add_argument("-n", type=int, default=20, help="경우마다 GET /health 를 보내는 횟수 (기본 20)")
    parser.add_argument("--concurrency", type=int, default=4, help="함께 POST를 보내는 스레드 수 (기본 4)")
    parser.add_argument(
        "--delay", type=float, default=DELAY_SECONDS, help=f"브로커의 답이 늦는 시간 (기본 {DELAY_SECONDS}초)"
    )
    parser.add_argument("--json", metavar="PATH", help='결과를 JSON으로도 쓴다: {"blocking": {…}, "fixed": {…}, …}')
    args = parser.parse_args(argv)
    if services_down():
        return EXIT_SERVICES_DOWN
    purge(LESSON)
    rows = {}
    with SlowProxy.for_url(global_config.RABBITMQ_URL, args.delay) as proxy:
        env = {"RABBITMQ_URL": proxy.url_for(global_config.RABBITMQ_URL)}
        web = WebServer(LESSON, needs_of(LESSON).web, port=free_port(), env=env)
        with running(Worker(LESSON), web):
            for path in VARIANTS.values():  # 브로커 연결을 먼저 맺어 둔다
                httpx.post(f"{web.url}{path}", json={"pages": 1}, timeout=TIMEOUT_SECONDS).raise_for_status()
            for name, path in VARIANTS.items():
                rows[name] = summarize(health_during_posts(web.url, path, args.n, args.concurrency), tail=99)
    purge(LESSON)
    title = (
        f"GET /health while {args.concurrency} threads keep POSTing reports through a broker "
        f"that answers {args.delay:g} s late"
    )
    print_table(title, rows)
    cost = {"asyncio.run() per call": summarize(asyncio_run_cost(), tail=99)}
    print()
    print_table("the cost of asyncio.run() (a new event loop per task call)", cost)
    write_json(args.json, {**rows, **cost})
    return 0


if __name__ == "__main__":
    sys.exit(main())
