"""Shared test set-up: offscreen Qt, and fixtures for the sandbox API and temp folders."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# never touch the developer's real keychain from tests: the app falls back to memory
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.models.failure_store import FailureStore
from app.services.connection.auth import StaticToken
from app.services.pipeline.import_engine import ImportEngine
from app.services.pipeline.import_events import ImportListener, ImportSettings
from app.services.sandbox.sandbox_server import SandboxConfig, SandboxServer, SandboxThread

ROOT = Path(__file__).resolve().parents[1]

# the tests talk to servers on this machine: a proxy of the machine's environment would
# stand in the way (the proxy tests set their own)
for _name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.lower(), None)


@contextlib.asynccontextmanager
async def running_sandbox(seed: int = 1, ssl_context: ssl.SSLContext | None = None
                          ) -> AsyncIterator[SandboxServer]:
    """The project's own API server on a free loopback port, on the running event loop
    (HTTPS with `ssl_context`), stopped at the end."""
    server = SandboxServer(SandboxConfig(seed=seed))
    await server.start("127.0.0.1", 0, ssl_context)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    """The project's own API server on a free loopback port, on the test's event loop."""
    async with running_sandbox() as server:
        yield server


class RecordingListener(ImportListener):
    """Keeps every event an import reports, for assertions."""

    def __init__(self) -> None:
        self.progress_reports = []
        self.problems: list[str] = []
        self.retry_files: list[Path] = []
        self.summary = None

    def progress(self, progress) -> None:  # type: ignore[override]
        self.progress_reports.append(progress)

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def retry_file_written(self, path: Path) -> None:
        self.retry_files.append(path)

    def finished(self, summary) -> None:  # type: ignore[override]
        self.summary = summary


@pytest.fixture
def make_engine(sandbox: SandboxServer, tmp_path: Path) -> Callable[..., ImportEngine]:
    """Build an ImportEngine aimed at the sandbox, writing results under tmp_path/out."""

    def make(paths, *, token: str | None = None, store: FailureStore | None = None,
             listener: ImportListener | None = None, **settings) -> ImportEngine:
        settings.setdefault("output_dir", tmp_path / "out")
        settings.setdefault("backoff_base_s", 0.01)
        settings.setdefault("backoff_max_s", 0.05)
        config = ImportSettings(customers_url=sandbox.customers_url("c4r"), **settings)
        return ImportEngine(paths, config, StaticToken(token or sandbox.static_token),
                            store=store, listener=listener or RecordingListener())

    return make


@pytest.fixture(scope="session", autouse=True)
def collect_garbage_on_the_gui_thread(qapp):
    """As the app does: cycles holding Qt objects are freed on the GUI thread only."""
    from app.views.main_thread_gc import MainThreadGarbageCollector

    collector = MainThreadGarbageCollector()
    yield collector
    collector.stop()


@pytest.fixture(autouse=True)
def background_work_ends_with_the_test():
    """A test's work on the shared worker pools is done before the next test starts."""
    yield
    from app.util import background, worker_pools

    worker_pools.wait_for_all(60_000)
    background.wait_for_all(60_000)


@pytest.fixture
def qloop(qapp):
    """A qasync event loop on the test's QApplication: drive it with run_until_complete."""
    import asyncio

    import qasync

    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)


async def until(condition, timeout: float = 30.0) -> bool:
    """Wait (on the test's event loop) for `condition` to hold, checking every 20 ms."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def wait_for_signal(signal, timeout: float = 30.0):
    """Await the next emission of a Qt signal (inside a running qasync loop)."""
    import asyncio

    future = asyncio.get_running_loop().create_future()

    def done(*args):
        if not future.done():
            future.set_result(args)

    signal.connect(done)
    try:
        return await asyncio.wait_for(future, timeout)
    finally:
        signal.disconnect(done)


@pytest.fixture
def sandbox_thread():
    """The sandbox API in a thread of its own, for tests that run the command line."""
    with SandboxThread(SandboxConfig(seed=3)) as thread:
        yield thread


def run_cli(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
            ) -> subprocess.CompletedProcess:
    """`python main.py ARGS` as a user runs it; `prefix` wraps the command (e.g. capsh)."""
    full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
    if env is None:
        full_env.pop("BULK_IMPORT_TOKEN", None)
    return subprocess.run([*prefix, sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", env=full_env,
                          timeout=180)
