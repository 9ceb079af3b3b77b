"""Where a sweep runs: in this process, on local cores, or on a Ray cluster.

A backend maps a pure, picklable function over a list of jobs and returns the results in the
jobs' order, so every backend gives the same answer for the same input (the jobs carry their
own seeds; nothing depends on which worker ran what, or when). ``progress(done, total)`` is
called as jobs finish.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hierro.errors import HierroError

__all__ = ["BACKENDS", "Backend", "LocalBackend", "Progress", "RayBackend", "SerialBackend", "make_backend"]

J = TypeVar("J")
R = TypeVar("R")
Progress = Callable[[int, int], None]


class Backend(Protocol):
    """Runs ``fn`` on every job; results in job order."""

    @property
    def workers(self) -> int: ...

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], progress: Progress | None = None) -> list[R]: ...


@dataclass(frozen=True)
class SerialBackend:
    """In this process, one job after another."""

    @property
    def workers(self) -> int:
        return 1

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], progress: Progress | None = None) -> list[R]:
        out = []
        for i, j in enumerate(jobs):
            out.append(fn(j))
            if progress is not None:
                progress(i + 1, len(jobs))
        return out


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class LocalBackend:
    """A process pool over the local cores (``processes`` None: all of them)."""

    processes: int | None = None

    @property
    def workers(self) -> int:
        return self.processes or _cpus()

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], progress: Progress | None = None) -> list[R]:
        if self.workers <= 1 or len(jobs) <= 1:
            return SerialBackend().map(fn, jobs, progress)
        results: list[Any] = [None] * len(jobs)
        with ProcessPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
            pending: dict[Future[R], int] = {pool.submit(fn, j): i for i, j in enumerate(jobs)}
            done = 0
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    results[pending.pop(f)] = f.result()
                    done += 1
                    if progress is not None:
                        progress(done, len(jobs))
        return results


@dataclass(frozen=True)
class RayBackend:
    """Ray tasks on a cluster at ``address`` (None: start or join a local Ray).

    Ray is the optional extra ``hierro[ray]``; it is imported only when this backend runs.
    """

    address: str | None = None
    num_cpus: int | None = None

    @property
    def workers(self) -> int:
        ray = _ray()
        self._init(ray)
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _init(self, ray: Any) -> None:
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": self.address, "log_to_driver": False, "include_dashboard": False}
            if self.address is None and self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(**kwargs)

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], progress: Progress | None = None) -> list[R]:
        ray = _ray()
        self._init(ray)
        task = ray.remote(fn)
        refs = [task.remote(j) for j in jobs]
        index = {r: i for i, r in enumerate(refs)}
        results: list[Any] = [None] * len(jobs)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for r in ready:
                results[index[r]] = ray.get(r)
            if progress is not None:
                progress(len(jobs) - len(pending), len(jobs))
        return results


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HierroError("the ray backend needs Ray: pip install 'hierro[ray]' (or ray), or use --backend local") from None
    return ray


BACKENDS: dict[str, Callable[[str | None], Backend]] = {
    "serial": lambda address: SerialBackend(),
    "local": lambda address: LocalBackend(),
    "ray": lambda address: RayBackend(address),
}


def make_backend(name: str, address: str | None = None) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise HierroError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}") from None
    if address is not None and name != "ray":
        raise HierroError("--address needs --backend ray")
    return factory(address)
