"""Matmul/conv GFLOP/s of this machine with PyTorch and numpy: python3 bench/reference/peak.py --peak 1024 --threads 1."""

from common import run

if __name__ == "__main__":
    run(None)
