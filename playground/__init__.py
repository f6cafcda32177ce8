"""실습을 돌리는 데 필요한 배관: 서비스 점검, 워커 프로세스, 실습 실행기.

실행기(`python -m playground`), 테스트, 벤치마크가 모두 이 패키지 하나를 쓴다.
실습 패키지(practiceNN)는 이 패키지를 모른다. 여기서는 실습을 모듈 이름으로만 다룬다.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
