"""README의 성능 주장을 한 번의 실행에서 나란히 측정하는 스크립트들: python -m benchmarks.NAME"""

from __future__ import annotations

import json
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """초 단위 표본의 개수, p50, p95, 최댓값."""
    ordered = sorted(samples)
    p95_index = max(0, round(0.95 * len(ordered)) - 1)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": ordered[p95_index],
        "max": ordered[-1],
    }


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    """rows: 이름 → summarize() 결과. 밀리초로 찍는다."""
    print(title)
    print(
        f"machine: {platform.machine()}, {platform.system()} {platform.release()}, python {platform.python_version()}"
    )
    width = max(len(name) for name in rows)
    print(f"{'':<{width}}  {'n':>3}  {'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}")
    for name, s in rows.items():
        print(f"{name:<{width}}  {s['n']:>3}  {s['p50'] * 1000:8.1f}  {s['p95'] * 1000:8.1f}  {s['max'] * 1000:8.1f}")


def write_json(path: str | None, rows: dict[str, dict[str, float]]) -> None:
    if path:
        Path(path).write_text(json.dumps(rows, indent=2) + "\n")
