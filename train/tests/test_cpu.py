"""OpenBLAS's kernels are picked from the CPU's flags, and a user's own choice is kept."""

import os

from train.cpu import configure, core_for


def test_core_for_picks_the_best_kernels_the_flags_allow():
    avx512 = {"avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}
    assert core_for(avx512) == "SkylakeX"
    assert core_for(avx512 - {"avx512bw"}) == "Haswell"
    assert core_for({"sse3", "avx"}) is None


def test_configure_keeps_an_explicit_openblas_coretype(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    configure()
    assert os.environ["OPENBLAS_CORETYPE"] == "Prescott"
