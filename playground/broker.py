"""RabbitMQ 큐를 들여다보고 치우는 작은 도구(테스트와 벤치마크용)."""

from __future__ import annotations

from amqp.exceptions import NotFound
from kombu import Connection

import global_config


def queue_counts(name: str) -> tuple[int, int] | None:
    """큐의 (메시지 수, 소비자 수). 큐가 없으면 None."""
    with Connection(global_config.RABBITMQ_URL) as conn:
        try:
            declared = conn.channel().queue_declare(queue=name, passive=True)
        except NotFound:
            return None
        return declared.message_count, declared.consumer_count


def delete_queue(name: str) -> None:
    with Connection(global_config.RABBITMQ_URL) as conn:
        conn.default_channel.queue_delete(queue=name)
