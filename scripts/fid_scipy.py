# The features of src/train/gan/fid/frechet_tests.rs, made the same way, and scipy's FID of
# them: the figure that test compares with. Run: python3 scripts/fid_scipy.py (numpy, scipy).
import numpy as np
import scipy
import scipy.linalg
M = (1 << 64) - 1
def stream(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & M
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        z ^= z >> 31
        yield (z >> 11) / float(1 << 53)
def features(seed, rows, dim, square):
    s = stream(seed); out = np.zeros((rows, dim))
    for i in range(rows):
        u = [next(s) for _ in range(dim)]
        for j in range(dim):
            acc = 0.0
            for k in range(j + 1):
                x = u[k] * u[k] if square else u[k]
                acc += x / (j - k + 1)
            out[i, j] = acc + (0.25 if square else 0.0)
    return out
def fid(a, b):
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
a = features(1, 200, 16, False)
b = features(2, 200, 16, True)
print("scipy", scipy.__version__, "numpy", np.__version__)
print("FID(a, b) by sqrtm:", repr(fid(a, b)))
print("checks: a[0, 0]", repr(a[0, 0]), "b[0, 2]", repr(b[0, 2]),
      "cov(a)[3, 5]", repr(np.cov(a, rowvar=False)[3, 5]), "mean(a)[7]", repr(a.mean(0)[7]))
