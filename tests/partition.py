"""네트워크 분할을 만드는 테스트 도구: 네트워크 네임스페이스 하나, veth 한 쌍, 그리고 TCP 릴레이.

브로커들은 127.0.0.1에만 열려 있다. 그래서 네임스페이스 안의 워커는 veth의 호스트 쪽 주소로 연결하고, 이 프로세스의
릴레이가 그 연결을 127.0.0.1의 서버로 이어 준다. veth의 양쪽을 내리면(ip link set … down) 패킷이 오가지 않는다.
연결은 양쪽 모두 열린 채로 있고, 아무도 RST나 FIN을 받지 못한다. 네트워크가 끊긴 것과 같다.
네임스페이스와 veth는 이 도구가 만들고 지운다. iptables는 쓰지 않는다(이 기계에 없다).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from playground.workers import Worker

IP_TIMEOUT_SECONDS = 10


class Unavailable(RuntimeError):
    """이 환경에서는 네트워크 네임스페이스를 만들 수 없다(root가 아니거나 `ip netns add` 가 실패한다)."""


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_SECONDS)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class Namespace:
    """네트워크 네임스페이스 하나와, 호스트와 그것을 잇는 veth 한 쌍 (10.214.<n>.1 ↔ 10.214.<n>.2)."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"p14-{tag}"
        self.host_link, self.inner_link = f"p14h{tag}", f"p14n{tag}"
        octet = int(tag[:2], 16)
        self.host_address, self.inner_address = f"10.214.{octet}.1", f"10.214.{octet}.2"

    def create(self) -> None:
        if os.geteuid() != 0:
            raise Unavailable("network namespaces need root (ip netns add)")
        try:
            ip("netns", "add", self.name)
        except (RuntimeError, FileNotFoundError) as exc:
            raise Unavailable(f"ip netns add failed: {exc}") from exc
        ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.inner_link)
        ip("link", "set", self.inner_link, "netns", self.name)
        ip("addr", "add", f"{self.host_address}/30", "dev", self.host_link)
        ip("link", "set", self.host_link, "up")
        ip("-n", self.name, "addr", "add", f"{self.inner_address}/30", "dev", self.inner_link)
        ip("-n", self.name, "link", "set", self.inner_link, "up")
        ip("-n", self.name, "link", "set", "lo", "up")

    def partition(self) -> None:
        """veth의 양쪽을 내린다: 네임스페이스와 호스트 사이에 어느 쪽으로도 패킷이 오가지 않는다.

        호스트 쪽만 내리면 한쪽으로만 끊긴다. 이미 열린 연결은 호스트에서 네임스페이스로 가는 패킷을 계속 보낸다.
        """
        ip("link", "set", self.host_link, "down")
        ip("-n", self.name, "link", "set", self.inner_link, "down")

    def heal(self) -> None:
        ip("-n", self.name, "link", "set", self.inner_link, "up")
        ip("link", "set", self.host_link, "up")

    def delete(self) -> None:
        with suppress(RuntimeError):
            ip("link", "del", self.host_link)  # 짝인 네임스페이스 쪽 veth도 함께 지워진다
        with suppress(RuntimeError):
            ip("netns", "del", self.name)


@contextmanager
def namespace() -> Iterator[Namespace]:
    """네임스페이스를 만들고, 블록을 나갈 때 지운다. 만들 수 없으면 Unavailable(까닭을 담아)."""
    made = Namespace()
    try:
        made.create()
        yield made
    finally:
        made.delete()


class Relay:
    """listen 주소로 온 TCP 연결마다 127.0.0.1의 target 포트로 연결해 두 방향으로 바이트를 옮긴다.

    서버 쪽이 연결을 닫은 시각을 closed_by_server 에 적는다(브로커가 클라이언트를 포기한 때).
    """

    def __init__(self, host: str, target: int, port: int = 0) -> None:
        self.target = target
        self.server = socket.create_server((host, port))  # port=0: 빈 포트 아무것이나
        self.port = self.server.getsockname()[1]
        self.closed_by_server: list[float] = []
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name=f"relay:{target}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # close() 가 듣는 소켓을 닫았다
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self.accepted += 1
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                if from_server:
                    self.closed_by_server.append(time.time())
                with suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        """듣기를 멈추고 옮기던 연결을 모두 끊는다(양쪽에 FIN). 브로커가 사라진 것처럼 보인다."""
        self.server.close()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # recv() 에서 기다리는 펌프 스레드도 깨운다
                sock.close()


class NamespacedWorker(Worker):
    """네트워크 네임스페이스 안에서 실행되는 워커 (ip netns exec <이름> python -m celery …)."""

    def __init__(self, lesson: str, netns: Namespace, **options) -> None:
        super().__init__(lesson, **options)
        self.netns = netns

    @property
    def argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns.name, *super().argv]
