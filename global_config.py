"""모든 실습이 함께 쓰는 세 서비스의 주소. 그리고 practice14가 쓰는 RabbitMQ 클러스터의 주소 목록.

같은 이름의 환경 변수가 있으면 그 값이 기본값을 대신한다.
예: RABBITMQ_URL=amqp://guest:guest@otherhost:5672 python -m practice00.call_tasks
"""

import os

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379")
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://localhost:5672")
# "db+" 는 Celery에게 SQLAlchemy 결과 백엔드를 쓰라고 알리고, "+psycopg2" 는 SQLAlchemy에게
# 드라이버를 못박아 준다. SQLAlchemy 2.1부터 그냥 postgresql:// 은 psycopg 3를 찾기 때문이다.
POSTGRES_URL = os.environ.get(
    "POSTGRES_URL",
    "db+postgresql+psycopg2://postgres:postgres@localhost:5432/celery_jobs",
)
# practice14의 RabbitMQ 클러스터(docker compose --profile cluster up -d)에 있는 노드 세 개의 주소를 ; 로 이었다.
# Celery(kombu)는 앞의 주소부터 연결하고, 연결이 끊기면 다음 주소로 넘어간다.
RABBITMQ_CLUSTER_URLS = os.environ.get(
    "RABBITMQ_CLUSTER_URLS",
    "amqp://localhost:5681;amqp://localhost:5682;amqp://localhost:5683",
)
