"""README Flower 절의 `refresh=1`: Flower는 켜질 때 한 번 워커들에게 물어 두고, refresh 없는 요청에는 그 답을 준다.

켜질 때 떠 있는 워커가 없어야 하는 테스트라, 모듈 범위의 워커를 띄워 두는 test_flower.py 와 다른 모듈에 둔다.
"""

from __future__ import annotations

import json

from course import wait_until
from playground.lessons import worker_on_empty_queue
from tests.test_flower import EVENT_WAIT_SECONDS, flower_running, free_port, poll_json, readme_curl_path


def wait_for_output(flower, text: str, seconds: float = EVENT_WAIT_SECONDS) -> None:
    wait_until(lambda: text in flower.output(), f"Flower 로그의 {text!r}", seconds)


def test_a_worker_started_after_flower_is_listed_only_with_refresh():
    with flower_running(port=free_port()) as flower:
        # 켜질 때 물었지만 아무 워커도 답하지 않았다(Flower가 그렇게 로그를 남긴다).
        wait_for_output(flower, "Inspect method registered failed")
        assert flower.get("/api/workers") == (200, b"{}")
        with worker_on_empty_queue("practice00") as worker:
            assert flower.get("/api/workers") == (200, b"{}")  # 물어 둔 답: 아직 아무도 없다
            workers = poll_json(flower, readme_curl_path("/api/workers"), lambda data: worker.node in data)
            assert "practice00.tasks.add" in workers[worker.node]["registered"]
            # refresh=1 로 물은 뒤에는 refresh 없이도 그 답이 나온다
            status, body = flower.get("/api/workers")
            assert status == 200 and worker.node in json.loads(body)
