"""Batches read ahead in a background thread: while the device computes a step, the next batches are read
from the store (a loader in the main process copies studies with the GIL released) and their transfer to
the device is started, so a step waits for data only when reading a batch takes longer than the step."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

import torch

PREFETCH = 2  # batches read ahead of the step being computed
_DONE = object()


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors on `device` (asynchronous from pinned memory; a batch from a loader worker is pinned
    here first), other values as they are."""
    def moved(value: torch.Tensor) -> torch.Tensor:
        if device.type == "cuda" and not value.is_pinned():
            value = value.pin_memory()
        return value.to(device, non_blocking=True)

    return {k: moved(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def prefetched(batches: Iterable[dict], device: torch.device, depth: int = PREFETCH) -> Iterator[dict]:
    """The batches of `batches`, in order, on `device`; an error while reading is raised here."""
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hand `item` over unless the consumer has stopped (then False)."""
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not put(to_device(batch, device)):
                    return
            put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            put(error)

    reader = threading.Thread(target=read, name="batch-prefetch", daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)
