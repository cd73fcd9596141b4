"""devstack.processes' port allocation: one stack's components never share a port."""

from __future__ import annotations

import socket

from devstack import processes


def test_free_port_never_hands_out_the_same_port_twice() -> None:
    ports = [processes.free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(20000 <= port < 32000 for port in ports)


def test_free_port_block_is_consecutive_free_and_not_reused() -> None:
    first = processes.free_port_block(4)
    block = list(range(first, first + 4))
    for port in block:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # raises if it were taken
    later = {processes.free_port() for _ in range(300)}
    assert later.isdisjoint(block)


def test_free_port_skips_a_port_in_use() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        processes._ports_handed_out.discard(taken)
        original = processes._ports_random
        try:
            # The generator offers the busy port first, then any other.
            class Offers:
                def __init__(self) -> None:
                    self.calls = 0

                def randrange(self, low: int, high: int) -> int:
                    self.calls += 1
                    return taken if self.calls == 1 else original.randrange(low, high)

            processes._ports_random = Offers()  # type: ignore[assignment]
            assert processes.free_port() != taken
        finally:
            processes._ports_random = original
