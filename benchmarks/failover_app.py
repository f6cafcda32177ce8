"""benchmarks.failover 가 띄우는 워커의 앱: practice14.tasks 의 앱 그대로이고, broker_heartbeat 만 환경 변수
FAILOVER_HEARTBEAT_SECONDS 로 바꾼다. 작업 이름(practice14.tasks.work)도 같다.

    FAILOVER_HEARTBEAT_SECONDS=4 celery -A benchmarks.failover_app worker
"""

import os

from practice14.tasks import app

app.conf.broker_heartbeat = float(os.environ.get("FAILOVER_HEARTBEAT_SECONDS", app.conf.broker_heartbeat))
