"""A real `trainforge serve` process for tests: started on a free loopback port with its own
TRAINFORGE_HOME, reached with real boto3 clients, killed (-9 if asked) and started again."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.conftest import free_port
from tests.support import TRAINFORGE, env_for


@dataclass
class RunningServer:
    home: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_files: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RunningServer:
        log = self.home / f"server-{len(self.log_files)}.log"
        self.log_files.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [TRAINFORGE, "serve", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("trainforge serve exited:\n" + log.read_text())
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("trainforge serve did not answer /ping:\n" + log.read_text())

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_files if p.exists())

    def client(self, service: str, **config: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def raw(
        self,
        target: str | None,
        body: bytes | str,
        method: str = "POST",
        path: str = "/",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(
            self.url + path, data=data if method != "GET" else None, method=method
        )
        request.add_header("Content-Type", "application/x-amz-json-1.1")
        if target is not None:
            request.add_header("X-Amz-Target", target)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                return response.status, headers, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            payload = error.read()
            headers = {k.lower(): v for k, v in error.headers.items()}
            return error.code, headers, json.loads(payload) if payload else {}


def start_server(home: Path, **env: str) -> RunningServer:
    settings = {"TRAINFORGE_LEASE_SECONDS": "6", "TRAINFORGE_HEARTBEAT_SECONDS": "1", **env}
    return RunningServer(home, free_port(), env_for(home, **settings)).start()


def wait_for_job(
    client: Any,
    name: str,
    statuses: tuple[str, ...] = ("Completed", "Failed", "Stopped"),
    timeout: float = 90,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        describe = client.describe_training_job(TrainingJobName=name)
        if describe["TrainingJobStatus"] in statuses:
            return dict(describe)
        time.sleep(0.2)
    raise AssertionError(
        f"{name} did not reach {statuses}: {describe['TrainingJobStatus']} "
        f"({describe['SecondaryStatus']}: {describe['SecondaryStatusTransitions'][-1]})"
    )
