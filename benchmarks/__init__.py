"""README의 성능 주장을 한 번의 실행에서 나란히 측정하는 스크립트들: python -m benchmarks.NAME"""

from __future__ import annotations

import json
import platform
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from playground import EXIT_SERVICES_DOWN  # noqa: F401 (벤치마크 스크립트가 여기서 가져다 쓴다)
from playground.services import ensure_services


def services_down() -> bool:
    """서비스가 하나라도 응답하지 않으면 무엇이 빠졌는지 stderr에 찍고 True."""
    problems = ensure_services(lambda line: print(line, file=sys.stderr))
    if problems:
        print("\n".join(problems), file=sys.stderr)
    return bool(problems)


def report(title: str, samples: Mapping[str, Sequence[float]], json_path: str | None) -> None:
    """이름 → 초 단위 표본들을 요약해 표로 찍고, json_path 가 있으면 JSON으로도 쓴다."""
    rows = {name: summarize(values) for name, values in samples.items()}
    print_table(title, rows)
    write_json(json_path, rows)


def summarize(samples: Sequence[float], tail: int = 95) -> dict[str, float]:
    """초 단위 표본의 개수, p50, p<tail>(기본 p95), 최댓값. 표본이 100개보다 적으면 p99는 최댓값과 같다."""
    ordered = sorted(samples)
    tail_index = max(0, round(tail / 100 * len(ordered)) - 1)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        f"p{tail}": ordered[tail_index],
        "max": ordered[-1],
    }


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    """rows: 이름 → summarize() 결과. 밀리초로 찍는다. 두 번째 백분위 열(p95, p99)은 rows가 가진 것이다."""
    print(title)
    print(
        f"machine: {platform.machine()}, {platform.system()} {platform.release()}, python {platform.python_version()}"
    )
    width = max(len(name) for name in rows)
    (tail,) = {key for row in rows.values() for key in row if key.startswith("p") and key != "p50"}
    print(f"{'':<{width}}  {'n':>3}  {'p50 ms':>8}  {tail + ' ms':>8}  {'max ms':>8}")
    for name, s in rows.items():
        print(f"{name:<{width}}  {s['n']:>3}  {s['p50'] * 1000:8.1f}  {s[tail] * 1000:8.1f}  {s['max'] * 1000:8.1f}")


def write_json(path: str | None, rows: dict[str, dict[str, float]]) -> None:
    if path:
        Path(path).write_text(json.dumps(rows, indent=2) + "\n")
