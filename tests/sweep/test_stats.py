"""The sweep's statistics against scipy.stats on fixed numbers."""
import math

import numpy as np
import pytest
from scipy import stats as sp

from fluxseg.sweep import stats

# Final mIoUs of five seeds each (two recipes that differ), and a third that does not differ
# from the first; unequal spreads and sizes, so Welch's test differs from Student's.
A = [0.276, 0.281, 0.262, 0.290, 0.271]
B = [0.336, 0.318, 0.349, 0.301, 0.352]
C = [0.269, 0.301, 0.255, 0.288]


def test_summary_matches_numpy_and_the_t_interval():
    s = stats.summary(A)
    assert s["n"] == 5 and s["values"] == A and (s["min"], s["max"]) == (0.262, 0.290)
    assert s["mean"] == pytest.approx(np.mean(A), abs=1e-15)
    assert s["std"] == pytest.approx(np.std(A, ddof=1), rel=1e-12)
    lo, hi = sp.t.interval(0.95, df=4, loc=np.mean(A), scale=sp.sem(A))
    assert s["ci95"] == pytest.approx([lo, hi], rel=1e-12)


def test_one_run_has_no_spread_and_no_interval_rather_than_nan():
    s = stats.summary([0.5])
    assert s["std"] is None and s["ci95"] is None and s["mean"] == 0.5
    c = stats.welch([0.5], A)
    assert c["p"] is None and c["ci95"] is None and "one run" in c["untestable"]
    assert c["difference"] == pytest.approx(0.5 - np.mean(A))
    assert "no test" in stats.verdict("x", "y", c)
    with pytest.raises(ValueError):
        stats.summary([])


@pytest.mark.parametrize("x,y", [(B, A), (C, A), (A, C)])
def test_welch_matches_scipy(x, y):
    c = stats.welch(x, y)
    ref = sp.ttest_ind(x, y, equal_var=False)
    assert c["t"] == pytest.approx(ref.statistic, rel=1e-10)
    assert c["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert c["df"] == pytest.approx(ref.df, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert c["ci95"] == pytest.approx([ci.low, ci.high], rel=1e-9)
    assert c["difference"] == pytest.approx(np.mean(x) - np.mean(y), rel=1e-12)
    assert (c["n"], c["n_baseline"]) == (len(x), len(y))


def test_welch_against_hand_numbers():
    # Two samples small enough to do by hand: means 2 and 5, variances 1 and 4 (n=3 each).
    c = stats.welch([4, 5, 6], [1, 2, 3])
    assert c["difference"] == 3.0
    se = math.sqrt(1 / 3 + 1 / 3)
    assert c["t"] == pytest.approx(3 / se)
    assert c["df"] == pytest.approx((2 / 3) ** 2 / (2 * (1 / 3) ** 2 / 2))  # = 4
    c2 = stats.welch([2, 4, 6], [1, 2, 3])  # variances 4 and 1: Satterthwaite below 4
    assert c2["df"] == pytest.approx((4 / 3 + 1 / 3) ** 2 / ((4 / 3) ** 2 / 2 + (1 / 3) ** 2 / 2))


def test_no_spread_at_all_is_said_not_divided_by():
    c = stats.welch([0.5, 0.5], [0.5, 0.5])
    assert c["p"] is None and "same value" in c["untestable"]


def test_verdict_words():
    ref = sp.ttest_ind(B, A, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert stats.verdict("xavier", "bilinear", stats.welch(B, A)) == (
        f"xavier is higher than bilinear: +0.055 (95% CI +{ci.low:.3f} to +{ci.high:.3f}, "
        f"p={ref.pvalue:.2g}, n=5 each)")
    lower = stats.verdict("bilinear", "xavier", stats.welch(A, B))
    assert lower.startswith("bilinear is lower than xavier: -0.055")
    same = stats.verdict("c", "a", stats.welch(C, A))
    p = sp.ttest_ind(C, A, equal_var=False).pvalue
    assert p > 0.05 and same.startswith(f"c and a are not distinguishable at n=4 vs 5 (p={p:.2g};")
