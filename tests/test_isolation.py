"""테스트 프로세스마다의 자리(playground/isolation.py): URL을 어떻게 바꾸고, 다시 만들 때 무엇을 비우는가."""

from __future__ import annotations

import urllib.parse

import pytest
import redis
import sqlalchemy
from kombu import Connection
from sqlalchemy.pool import NullPool

from playground import isolation
from playground.services import sqlalchemy_url

SLOT = "gw13"  # 테스트 프로세스(기본 gw0…)가 쓰지 않는 자리: Redis 14번. 15번은 practice12의 테스트가 쓴다


def test_each_process_gets_its_own_vhost_database_and_redis_number():
    urls = isolation.isolated_urls("gw1")
    assert urllib.parse.urlsplit(urls["RABBITMQ_URL"]).path == "/celery-playground-gw1"
    assert urllib.parse.urlsplit(urls["REDIS_URL"]).path == "/2"
    assert sqlalchemy_url(urls["POSTGRES_URL"]).database == "celery_jobs_gw1"
    assert urllib.parse.urlsplit(isolation.isolated_urls("main")["REDIS_URL"]).path == "/1"
    with pytest.raises(ValueError, match="use fewer test processes"):
        isolation.isolated_urls("gw15")


def test_making_a_place_again_empties_what_was_left_there():
    isolation.prepare([SLOT])
    urls = isolation.isolated_urls(SLOT)
    with Connection(urls["RABBITMQ_URL"]) as conn:
        conn.default_channel.queue_declare(queue="left_over", durable=True, auto_delete=False)
    client = redis.Redis.from_url(urls["REDIS_URL"])
    client.set("left_over", "1")
    engine = sqlalchemy.create_engine(sqlalchemy_url(urls["POSTGRES_URL"]), poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE left_over (id int)"))

    isolation.prepare([SLOT])

    with Connection(urls["RABBITMQ_URL"]) as conn:
        from amqp.exceptions import NotFound

        with pytest.raises(NotFound):
            conn.channel().queue_declare(queue="left_over", passive=True)
    assert client.get("left_over") is None
    assert "left_over" not in sqlalchemy.inspect(engine).get_table_names()
    client.close()
    engine.dispose()
