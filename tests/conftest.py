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
    """Keeps every event an import reports, for assertions; with a `store`, keeps it
    current from the failure events, as the window's import session does."""

    def __init__(self) -> None:
        self.progress_reports = []
        self.problems: list[str] = []
        self.retry_files: list[Path] = []
        self.summary = None
        self.store: FailureStore | None = None

    def progress(self, progress) -> None:  # type: ignore[override]
        self.progress_reports.append(progress)

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def retry_file_written(self, path: Path) -> None:
        self.retry_files.append(path)

    def finished(self, summary) -> None:  # type: ignore[override]
        self.summary = summary

    def failures_found(self, records) -> None:  # type: ignore[override]
        if self.store is not None:
            self.store.upsert(records)

    def failures_resolved(self, keys: list[str], job_id: int, when: str) -> None:
        if self.store is not None:
            self.store.resolve(keys, job_id, when)


@pytest.fixture
def make_engine(sandbox: SandboxServer, tmp_path: Path) -> Callable[..., ImportEngine]:
    """Build an ImportEngine aimed at the sandbox, writing results under tmp_path/out."""

    def make(paths, *, token: str | None = None, store: FailureStore | None = None,
             listener: RecordingListener | None = None, resume_job: int | None = None,
             **settings) -> ImportEngine:
        """`store`: kept current from the import's failure events; `resume_job`: resume
        that job of the folder (`paths` are then ignored)."""
        settings.setdefault("output_dir", tmp_path / "out")
        settings.setdefault("backoff_base_s", 0.01)
        settings.setdefault("backoff_max_s", 0.05)
        config = ImportSettings(customers_url=sandbox.customers_url("c4r"), **settings)
        listener = listener or RecordingListener()
        listener.store = store
        return ImportEngine(paths, config, StaticToken(token or sandbox.static_token),
                            listener=listener, resume_job=resume_job)

    return make


@pytest.fixture(autouse=True)
def background_work_ends_with_the_test():
    """A test's work on the shared worker pools is done before the next test starts."""
    yield
    from app.util import background

    background.wait_for_all(60_000)


@pytest.fixture
def qloop(qapp):
    """A qasync event loop on the test's QApplication: drive it with run_until_complete."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import shiboken6
    from PySide6.QtCore import QObject

    from app.util.event_loop import GuiEventLoop

    loop = GuiEventLoop(qapp)
    # plain threads for run_in_executor (aiohttp's name lookups): qasync's own executor is
    # ten QThreads, which the closed loop would keep in a reference cycle
    loop.set_default_executor(ThreadPoolExecutor(max_workers=4, thread_name_prefix="qloop"))
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        # The closed loop and its Qt objects (its timer, its signal carrier) are a reference
        # cycle, freed only by the cycle collector in whichever thread it next runs: a Qt
        # object with timers destroyed there crashes the app later. Deleted here instead, on
        # the GUI thread; the cycle left holds no Qt object.
        for value in list(vars(loop).values()):
            if isinstance(value, QObject) and shiboken6.isValid(value):
                shiboken6.delete(value)


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
    """`python main.py ARGS` as a user runs it; `prefix` wraps the command (e.g. capsh).

    Its output is read as UTF-8, which the command line writes whatever the code page: no
    PYTHONIOENCODING or PYTHONUTF8 of the tests' environment chooses it instead."""
    full_env = {name: value for name, value in os.environ.items()
                if name not in ("PYTHONIOENCODING", "PYTHONUTF8")}
    full_env.update(env or {})
    if env is None:
        full_env.pop("BULK_IMPORT_TOKEN", None)
    return subprocess.run([*prefix, sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", env=full_env,
                          timeout=180)
