#!/usr/bin/env python3
"""Reference values for the GGUF K-quant dequantization test (tests/io/test_gguf.cpp).

Writes tests/io/fixtures/<type>.bin for Q4_K, Q5_K and Q6_K: N random-but-valid blocks followed by
their N * 256 dequantized float32 values, as computed by gguf-py (`gguf.quants.dequantize`, the Python
port of ggml's dequantize_row_q*_K). Block bytes are random except the fp16 scales (d, dmin), which are
set to finite values of realistic magnitude so every output is finite. All little-endian.

Usage: python3 scripts/make_gguf_fixtures.py   (needs numpy and the PyPI `gguf` package)
"""
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

N_BLOCKS = 6
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "io" / "fixtures"

# (type, block bytes, byte offsets of the fp16 d and dmin fields in the block; None: no dmin)
TYPES = [
    (T.Q4_K, 144, 0, 2),
    (T.Q5_K, 176, 0, 2),
    (T.Q6_K, 210, 208, None),
]


def fp16_bytes(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).view(np.uint8).reshape(-1, 2)


def make(qtype: T, block_bytes: int, d_off: int, dmin_off: int | None, rng: np.random.Generator) -> bytes:
    blocks = rng.integers(0, 256, size=(N_BLOCKS, block_bytes), dtype=np.uint8)
    # Scales spread over a few orders of magnitude, with both signs: real files have negative d too.
    d = rng.uniform(1e-4, 5e-2, N_BLOCKS) * rng.choice([-1.0, 1.0], N_BLOCKS)
    blocks[:, d_off:d_off + 2] = fp16_bytes(d)
    if dmin_off is not None:
        blocks[:, dmin_off:dmin_off + 2] = fp16_bytes(rng.uniform(1e-4, 5e-2, N_BLOCKS))
    values = quants.dequantize(blocks.reshape(-1), qtype).astype(np.float32).reshape(-1)
    assert values.size == N_BLOCKS * 256 and np.all(np.isfinite(values))
    return blocks.tobytes() + values.astype("<f4").tobytes()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240601)
    for qtype, block_bytes, d_off, dmin_off in TYPES:
        path = OUT / f"{qtype.name.lower()}.bin"
        path.write_bytes(make(qtype, block_bytes, d_off, dmin_off, rng))
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
