"""Peak memory and time of DGCNN's k-nearest-neighbour search, chunked against unchunked.

``vclib.pointcloud.dgcnn.knn`` processes the queries in chunks, so a chunk of the distance matrix holds at
most ``MAX_CHUNK_ELEMENTS`` numbers instead of the full ``B x N x N`` (1 GiB of float32 for B=16 and
N=4,096, and the expansion ``|x_i|^2 - 2 x_i.x_j + |x_j|^2`` makes temporaries of the same size).
Both versions return the same indices. Expect chunking to cut the peak memory by roughly N / chunk,
at a similar time (the work is the same; smaller blocks can even be faster in cache).

Each measurement runs in a fresh process: on the CPU the peak is the growth of the peak resident set size
(``ru_maxrss``) during one call, on CUDA ``torch.cuda.max_memory_allocated``.

Usage: python benchmarks/bench_knn.py [--config small|paper] [--threads 2] [--rounds 5] [--device cpu]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

#: (B, N, k, chunk size): "paper" is the issue's case with the automatic chunk size (``None``); "small" runs in
#: seconds with an explicit chunk of 64 queries.
CONFIGS = {"small": (4, 1024, 20, 64), "paper": (16, 4096, 20, None)}


def measure(device: str, batch: int, points: int, k: int, chunk: int | None, rounds: int, threads: int) -> dict:
    """One fresh process: peak extra memory (MiB) of one call, then the median time of ``rounds`` calls."""
    import torch

    from vclib.pointcloud.dgcnn import knn

    torch.set_num_threads(threads)
    x = torch.randn(batch, 3, points, device=device, generator=torch.Generator().manual_seed(0)
                    if device == "cpu" else None)
    chunk_size = chunk
    knn(x[:1, :, :64], 4)  # warm up the kernels outside the measurement
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    idx = knn(x, k, chunk_size=chunk_size)
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        knn(x, k, chunk_size=chunk_size)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    checksum = int(idx.sum())
    return {"peak_mib": peak / 2**20, "seconds": sorted(times)[len(times) // 2], "checksum": checksum}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure(*json.loads(sys.argv[2]))))
        return
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from common import parse_args

    args = parse_args(__doc__, tuple(CONFIGS))
    batch, points, k, chunk_size = CONFIGS[args.config]
    full_matrix = batch * points * points * 4 / 2**20
    print(f"knn on B={batch}, N={points}, k={k}, device {args.device}, {args.threads} threads; "
          f"one full B x N x N float32 matrix is {full_matrix:,.0f} MiB")
    results = {}
    for chunk, size in (("unchunked", points), ("chunked", chunk_size)):
        spec = json.dumps([args.device, batch, points, k, size, args.rounds, args.threads])
        out = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True, check=True)
        results[chunk] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{chunk:>10}: peak {results[chunk]['peak_mib']:8,.0f} MiB, {results[chunk]['seconds'] * 1000:8.1f} ms")
    same = results["unchunked"]["checksum"] == results["chunked"]["checksum"]
    ratio_memory = results["unchunked"]["peak_mib"] / max(results["chunked"]["peak_mib"], 1e-9)
    ratio_time = results["chunked"]["seconds"] / results["unchunked"]["seconds"]
    print(f"same indices: {same}; memory unchunked / chunked: {ratio_memory:.1f}x; "
          f"time chunked / unchunked: {ratio_time:.2f}x")


if __name__ == "__main__":
    main()
