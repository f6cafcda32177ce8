"""RabbitMQ를 들여다보고 치우는 작은 도구(테스트와 벤치마크용).

큐의 메시지 수는 AMQP로 묻고, 바인딩과 큐의 종류처럼 AMQP로 물을 수 없는 것은 설정된 브로커의 관리 HTTP API
(`RABBITMQ_MANAGEMENT_URL`, 기본 http://guest:guest@localhost:15672)로 묻는다. 기본 주소는 docker-compose 의 관리 UI다.
이 기계에 설치된 `rabbitmqctl` 은 다른 RabbitMQ를 볼 수 있으므로 쓰지 않는다.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from amqp.exceptions import NotFound
from kombu import Connection

import global_config

DEFAULT_MANAGEMENT_URL = "http://guest:guest@localhost:15672"
MANAGEMENT_TIMEOUT_SECONDS = 10


class ManagementError(RuntimeError):
    """관리 API가 답하지 않거나 요청을 거절했다."""


def management_url() -> str:
    return os.environ.get("RABBITMQ_MANAGEMENT_URL", DEFAULT_MANAGEMENT_URL)


def vhost(url: str | None = None) -> str:
    """AMQP 주소가 가리키는 가상 호스트 (경로가 없으면 "/")."""
    path = urllib.parse.urlsplit(url or global_config.RABBITMQ_URL).path
    return urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"


def management(method: str, path: str, body: Any = None) -> Any:
    """관리 API에 요청하고 JSON 답을 돌려준다(답이 비었으면 None). path는 /api/ 뒤의 부분이다."""
    parts = urllib.parse.urlsplit(management_url())
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
    user = urllib.parse.unquote(parts.username or "guest")
    password = urllib.parse.unquote(parts.password or "guest")
    request = urllib.request.Request(
        f"{base}/api/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=MANAGEMENT_TIMEOUT_SECONDS) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        raise ManagementError(f"{method} {base}/api/{path}: HTTP {exc.code} {exc.read()[:200]!r}") from exc
    except OSError as exc:
        raise ManagementError(
            f"RabbitMQ 관리 API에 연결할 수 없습니다: {base} ({exc})\n"
            "  관리 플러그인을 켜세요: rabbitmq-plugins enable rabbitmq_management\n"
            "  docker-compose 의 rabbitmq 이미지에는 이미 켜져 있습니다. "
            "다른 주소를 쓰려면 환경 변수로 정하세요: RABBITMQ_MANAGEMENT_URL"
        ) from exc
    return json.loads(data) if data.strip() else None


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def queues() -> list[dict[str, Any]]:
    """설정된 가상 호스트의 큐들 (관리 API가 보여 주는 그대로: name, durable, exclusive, arguments, type …)."""
    return management("GET", f"queues/{quoted(vhost())}")


def bindings() -> list[tuple[str, str, str]]:
    """설정된 가상 호스트의 (exchange, 큐, routing key) 바인딩들. 기본 exchange는 ""."""
    return [
        (b["source"], b["destination"], b["routing_key"])
        for b in management("GET", f"bindings/{quoted(vhost())}")
        if b["destination_type"] == "queue"
    ]


def server_version() -> str:
    """설정된 RabbitMQ가 연결할 때 알려 주는 자기 버전 ("4.3.6")."""
    with Connection(global_config.RABBITMQ_URL) as conn:
        conn.ensure_connection(max_retries=1)
        version = conn.connection.server_properties["version"]
    return version.decode() if isinstance(version, bytes) else version


def server_major() -> int:
    return int(server_version().split(".")[0])


def queue_counts(name: str) -> tuple[int, int] | None:
    """큐의 (메시지 수, 컨슈머 수). 큐가 없으면 None."""
    with Connection(global_config.RABBITMQ_URL) as conn:
        try:
            declared = conn.channel().queue_declare(queue=name, passive=True)
        except NotFound:
            return None
        return declared.message_count, declared.consumer_count


def delete_queue(name: str) -> None:
    with Connection(global_config.RABBITMQ_URL) as conn:
        conn.default_channel.queue_delete(queue=name)
