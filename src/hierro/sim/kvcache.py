"""The paged KV pool of one replica, with an optional prefix cache (LRU over prefix blocks).

Blocks follow PagedAttention (Kwon et al., SOSP 2023): a sequence of c cached tokens holds
ceil(c / 16) blocks. Prefix caching follows vLLM's automatic prefix caching: a full prompt block
whose content hash is known is kept after its request ends and reused by a later request with
the same prefix; unused cached blocks are evicted least recently used first. Here the unit of
sharing is a workload prefix block (``hash_block_tokens`` tokens, 512 in the Mooncake traces),
which occupies ``hash_block_tokens / 16`` KV blocks.

Accounting: ``private`` blocks belong to one running request; ``pinned`` prefix blocks are in use
by at least one request; ``lru`` prefix blocks are held by none and may be evicted. Available
for allocation = capacity - private - pinned (evictable blocks count as available).
"""

from __future__ import annotations

from collections import OrderedDict

from hierro.sim.engine import SimError

__all__ = ["KvPool"]


class KvPool:
    """Block accounting of one replica (all counts in KV blocks of ``block_tokens`` tokens)."""

    __slots__ = ("block_tokens", "capacity", "hash_blocks", "lru", "peak", "pinned", "private")

    def __init__(self, capacity: int, *, block_tokens: int = 16, hash_block_tokens: int = 512) -> None:
        if capacity < 1:
            raise SimError(f"the KV pool holds {capacity} blocks; the model does not fit")
        if hash_block_tokens % block_tokens:
            raise SimError(f"prefix blocks of {hash_block_tokens} tokens are not whole KV blocks of {block_tokens}")
        self.capacity = capacity
        self.block_tokens = block_tokens
        self.hash_blocks = hash_block_tokens // block_tokens
        self.private = 0
        self.pinned: dict[int, int] = {}
        """Prefix hash -> number of running requests using it."""
        self.lru: OrderedDict[int, None] = OrderedDict()
        """Cached prefix hashes no request uses, least recently used first."""
        self.peak = 0

    def blocks(self, tokens: int) -> int:
        """Blocks that ``tokens`` cached tokens occupy."""
        return -(-tokens // self.block_tokens)

    @property
    def used(self) -> int:
        """Blocks not free: private, pinned and evictable cached ones."""
        return self.private + self.hash_blocks * (len(self.pinned) + len(self.lru))

    @property
    def available(self) -> int:
        """Blocks an allocation may take (free plus evictable)."""
        return self.capacity - self.private - self.hash_blocks * len(self.pinned)

    def alloc(self, n: int) -> None:
        """Take ``n`` private blocks, evicting cached prefix blocks (LRU) as needed."""
        if n <= 0:
            return
        hb = self.hash_blocks
        held = self.private + hb * len(self.pinned)
        lru = self.lru
        free = self.capacity - held - hb * len(lru) if lru else self.capacity - held
        while free < n:
            if not lru:
                raise SimError(f"KV pool overflow: {n} blocks asked, {free} free of {self.capacity}")
            lru.popitem(last=False)
            free += hb
        self.private += n
        held += n
        if held > self.peak:
            self.peak = held

    def free(self, n: int) -> None:
        self.private -= n
        if self.private < 0:
            raise SimError("KV pool underflow: more blocks freed than allocated")

    # --- prefix cache -----------------------------------------------------------------

    def lookup(self, hashes: list[int], limit: int) -> tuple[int, int]:
        """Leading prefix blocks of ``hashes`` (at most ``limit``) that are cached, and how many
        of those are evictable (pinning them takes them out of ``available``)."""
        n = cold = 0
        pinned, lru = self.pinned, self.lru
        for h in hashes[:limit]:
            if h in pinned:
                n += 1
            elif h in lru:
                n += 1
                cold += 1
            else:
                break
        return n, cold

    def pin(self, hashes: list[int]) -> None:
        """Mark cached prefix blocks as used by one more request."""
        pinned, lru = self.pinned, self.lru
        for h in hashes:
            if h in pinned:
                pinned[h] += 1
            else:
                del lru[h]
                pinned[h] = 1

    def unpin(self, hashes: list[int]) -> None:
        """One request stops using these prefix blocks; unused ones become evictable (MRU end)."""
        pinned, lru = self.pinned, self.lru
        for h in hashes:
            c = pinned[h] - 1
            if c:
                pinned[h] = c
            else:
                del pinned[h]
                lru[h] = None

    def publish(self, h: int) -> bool:
        """Turn ``hash_blocks`` private blocks of a request into the cached prefix block ``h``,
        pinned by that request; False (nothing changes) if ``h`` is already cached."""
        if h in self.pinned or h in self.lru:
            return False
        self.private -= self.hash_blocks
        self.pinned[h] = 1
        return True
