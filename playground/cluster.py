"""practice14의 테스트와 벤치마크가 쓰는 RabbitMQ 클러스터(노드 세 개): 띄우기, 노드 멈추기와 띄우기, 큐의 리더 찾기.

노드는 `.ci/services cluster …` 가 띄운다(Docker 없이, 이 기계의 127.0.0.1 에만). 주소 목록은
global_config.RABBITMQ_CLUSTER_URLS 이고(`.ci/services env` 가 내보낸다), 노드 N의 관리 API는 그 노드의 AMQP 포트에
10000을 더한 포트다. 큐를 묻는 것은 관리 API로 한다(이 기계에 설치된 `rabbitmqctl` 은 다른 RabbitMQ를 볼 수 있다).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import global_config
from playground import PROJECT_ROOT

SERVICES = PROJECT_ROOT / ".ci" / "services"
SERVICES_TIMEOUT_SECONDS = 180
API_TIMEOUT_SECONDS = 5
MANAGEMENT_PORT_OFFSET = 10000


class ClusterError(RuntimeError):
    """클러스터를 띄우거나 멈추지 못했다."""


def bash_services(*args: str) -> str:
    """`bash .ci/services cluster ARGS…` 를 실행하고 표준 출력을 돌려준다. 실패하면 ClusterError."""
    done = subprocess.run(
        ["bash", str(SERVICES), "cluster", *args], capture_output=True, text=True, timeout=SERVICES_TIMEOUT_SECONDS
    )
    if done.returncode != 0:
        raise ClusterError(f"bash .ci/services cluster {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def urls() -> list[str]:
    return global_config.RABBITMQ_CLUSTER_URLS.split(";")


def amqp_port(node: int) -> int:
    return urllib.parse.urlsplit(urls()[node - 1]).port


def node_name(node: int) -> str:
    return f"cluster-{node}@localhost"


def node_number(name: str) -> int:
    """ "cluster-2@localhost" → 2."""
    return int(name.split("@")[0].rsplit("-", 1)[1])


def is_running() -> bool:
    done = subprocess.run(["bash", str(SERVICES), "cluster", "status"], capture_output=True, timeout=30)
    return done.returncode == 0


def start() -> float:
    """클러스터를 (돌고 있지 않으면) 띄우고, 걸린 시간(초)을 돌려준다."""
    started = time.monotonic()
    bash_services("start")
    return time.monotonic() - started


def stop_node(node: int) -> float:
    started = time.monotonic()
    bash_services("stop-node", str(node))
    return time.monotonic() - started


def start_node(node: int) -> float:
    started = time.monotonic()
    bash_services("start-node", str(node))
    return time.monotonic() - started


def api(node: int, path: str) -> Any:
    """노드 node의 관리 API에 GET 한다. path는 /api/ 뒤의 부분이다."""
    parts = urllib.parse.urlsplit(urls()[node - 1])
    user, password = parts.username or "guest", parts.password or "guest"
    request = urllib.request.Request(
        f"http://{parts.hostname}:{parts.port + MANAGEMENT_PORT_OFFSET}/api/{path}",
        headers={"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()},
    )
    with urllib.request.urlopen(request, timeout=API_TIMEOUT_SECONDS) as response:
        return json.loads(response.read())


def queue(name: str, asking: int) -> dict[str, Any]:
    """기본 가상 호스트의 큐 하나(type, node, leader, members, online …)를 노드 asking에게 묻는다."""
    return api(asking, f"queues/%2F/{urllib.parse.quote(name, safe='')}")


def running_nodes(asking: int) -> set[str]:
    return {node["name"] for node in api(asking, "nodes") if node["running"]}


def leader(name: str, asking: int = 1) -> int:
    """쿼럼 큐의 리더 노드 번호."""
    return node_number(queue(name, asking)["leader"])


def urls_starting_with(node: int) -> str:
    """node의 주소가 맨 앞에 오는 주소 목록 (RABBITMQ_CLUSTER_URLS 모양). 그 노드에 먼저 연결하게 한다."""
    listed = urls()
    return ";".join([listed[node - 1], *(url for i, url in enumerate(listed, 1) if i != node)])


def other_node(*busy: int) -> int:
    """busy가 아닌 노드 하나 (관리 API를 물을 곳)."""
    return next(n for n in range(1, len(urls()) + 1) if n not in busy)


def answers(node: int) -> bool:
    try:
        api(node, "overview")
    except (urllib.error.URLError, OSError):
        return False
    return True
