"""느린 브로커를 흉내 내는 TCP 프록시. 127.0.0.1의 빈 포트에서 듣고, 받은 연결을 브로커로 이어 준다.

브로커가 보내는 데이터(브로커 → 클라이언트)만 DELAY_SECONDS 늦게 전한다. 클라이언트가 보내는 쪽은 그대로
보낸다. 그래서 브로커의 답을 기다리는 호출은 한 번에 DELAY_SECONDS씩 늦어진다. publisher confirms를 켠 delay() 가
그렇다(메시지를 보내고 브로커의 ack를 기다린다). 순서는 바뀌지 않는다.

practice16의 테스트와 벤치마크가 웹 서버의 RABBITMQ_URL 을 이 프록시로 돌려, async def 엔드포인트 안의 delay() 가
이벤트 루프를 얼마나 오래 막는지 잰다.

    with SlowProxy("127.0.0.1", 5672) as proxy:
        url = proxy.url_for("amqp://guest:guest@127.0.0.1:5672//")   # 같은 주소, 포트만 프록시
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
from contextlib import suppress

DELAY_SECONDS = 0.3
CHUNK_BYTES = 65536


class SlowProxy:
    """이벤트 루프 스레드 하나에서 동작하는 프록시. with 블록 안에서만 듣는다."""

    def __init__(self, host: str, port: int, delay: float = DELAY_SECONDS) -> None:
        self.target = (host, port)
        self.delay = delay
        self.port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="slow-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def for_url(cls, url: str, delay: float = DELAY_SECONDS) -> SlowProxy:
        """url(amqp://…)이 가리키는 서버 앞에 설 프록시."""
        parts = urllib.parse.urlsplit(url)
        return cls(parts.hostname or "localhost", parts.port or 5672, delay)

    def url_for(self, url: str) -> str:
        """url에서 호스트와 포트만 이 프록시로 바꾼 주소. 사용자, 비밀번호, 가상 호스트는 그대로다."""
        parts = urllib.parse.urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info) -> None:
        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, broker_writer}
        try:
            await asyncio.gather(
                self._pump(client_reader, broker_writer, 0.0),
                self._pump(broker_reader, client_writer, self.delay),
            )
        finally:
            for writer in (client_writer, broker_writer):
                writer.close()
                self._writers.discard(writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
        """reader에서 읽은 것을 받은 때부터 delay초 뒤에 writer로 보낸다. 읽기는 기다리지 않고 계속한다."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            with suppress(OSError):
                writer.write_eof()

        sender = asyncio.create_task(forward())
        try:
            while data := await reader.read(CHUNK_BYTES):
                queue.put_nowait((time.monotonic() + delay, data))
        except OSError:
            pass
        finally:
            queue.put_nowait((time.monotonic() + delay, b""))
            with suppress(OSError):
                await sender
