"""Independent reference values for test/restore/classical.test.ts (run by hand; the tests do not need Python).

Run:  /usr/bin/python3 test/restore/classical_known_answers.py
Tools (Debian 12 packages): python3-opencv 4.6.0 (with the contrib module ximgproc), python3-numpy 1.24.2
(`apt-get install -y python3-opencv`).

Images are the integer formulas of clean_image() / noise() below, the same as in classical.test.ts.

NLM (Buades, Coll, Morel, CVPR 2005) as OpenCV implements it:
- 'rgb': cv2.fastNlMeansDenoising(noisy_uint8_HxWx3, None, h, 7, 21) (one weight per pixel pair from all
  three channels);
- 'lab': cv2.fastNlMeansDenoisingColored(noisy_bgr, None, h, hColor, 7, 21) (COLOR_LBGR2Lab, L with h,
  (a, b) with hColor, back to BGR).
Printed: PSNR of the output against the clean image (peak 255, all channels), the output's mean, and the
output values at a few pixels.

DCP (He, Sun, Tang, CVPR 2009 / TPAMI 2011) with guided-filter refinement (He, Sun, Tang, ECCV 2010 /
TPAMI 2013), written here with cv2 and numpy following the papers:
- dark channel: per-pixel channel minimum, then cv2.erode with a 15×15 rectangle (window cut at the
  border);
- A: among the floor(N·0.001) (≥ 1) brightest dark-channel pixels (stable order: ties by lower index),
  the one with the largest R + G + B;
- raw t = 1 − 0.95·erode(min_c I_c/A_c); refined t = the colour guided filter (TPAMI 2013 Sec. 3.5) of raw t
  with guide I, radius 20, eps 1e-3, written below in numpy (float64) on cv2.boxFilter(…, BORDER_REFLECT).
  Not cv2.ximgproc.guidedFilter itself: for eps < 1e-2 OpenCV replaces any 3×3 determinant |det(Σ + εU)| <
  1e-6 by 1 (ximgproc/src/guided_filter.cpp, ComputeCovGuideInv_ParBody), which in the flat, grey regions of a
  hazy image (det ≈ ε³ = 1e-9) changes the result. The numpy filter is checked against cv2.ximgproc at
  eps 1e-2, where OpenCV does not do that (printed as gfAt / gfGreyAt and compared in the test too);
- J = (I − A)/max(t, 0.1) + A.
The hazy input is I = J·t + A(1 − t) with t = exp(−3·d), d = 0.1 + 0.9·(1 − y/(H−1)), A = 0.8 (grey).
Printed: A, the mean refined t, t and J at a few pixels, PSNR of clip(J) (rounded to 8 bit) vs the clean
image, and the guided filter's output at a few pixels for a second, 2-D input.
"""
import numpy as np
import cv2


def clean_image(h, w):
    """Ramps, an 8-px checker and a little texture, 0..255; every 6th pixel of every 6th row has one channel at 0
    (so that every 15×15 patch holds a zero in each channel: the dark channel prior holds exactly)."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing='ij')
    v = np.minimum(255, 20 + y + x + 30 * c + 50 * (((x // 8) + (y // 8)) % 2) + (x * x + 3 * y * y + 7 * c) % 17)
    v = np.where((x % 6 == 0) & (y % 6 == 0) & ((x // 6 + y // 6) % 3 == c), 0, v)
    return v.astype(np.float64)


def noise(h, w, sigma):
    """Approximately Gaussian noise of std sigma: sum of 4 hashed uniforms, centred and scaled."""
    i = np.arange(h * w * 3 * 4, dtype=np.uint64)
    u = ((i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)).astype(np.float64) / 2.0 ** 32
    s = u.reshape(h, w, 3, 4).sum(axis=3)
    return (s - 2.0) * np.sqrt(3.0) * sigma


def box(v, r):
    return cv2.boxFilter(v, cv2.CV_64F, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter_color(I, p, r, eps):
    """He et al., TPAMI 2013, Eq. 19-20: a = (Sigma + eps U)^-1 (mean(I p) - mu mean(p)), b = mean(p) - a.mu, q = mean(a).I + mean(b)."""
    I = I.astype(np.float64)
    p = p.astype(np.float64)
    mu = np.stack([box(I[..., c], r) for c in range(3)], axis=2)
    mp = box(p, r)
    cov_ip = np.stack([box(I[..., c] * p, r) for c in range(3)], axis=2) - mu * mp[..., None]
    S = np.empty(I.shape[:2] + (3, 3))
    for i in range(3):
        for j in range(3):
            S[..., i, j] = box(I[..., i] * I[..., j], r) - mu[..., i] * mu[..., j]
    S += eps * np.eye(3)
    a = np.linalg.solve(S, cov_ip[..., None])[..., 0]
    b = mp - (a * mu).sum(axis=2)
    ma = np.stack([box(a[..., c], r) for c in range(3)], axis=2)
    return (ma * I).sum(axis=2) + box(b, r)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


PIXELS = [(0, 0), (0, 39), (5, 7), (12, 30), (20, 20), (31, 3), (40, 25), (47, 39)]

print('// NLM')
H, W = 48, 40
clean = clean_image(H, W)
for sigma, h, h_color in [(15, 10.0, 10.0), (25, 20.0, 15.0)]:
    noisy = np.clip(np.floor(clean + noise(H, W, sigma) + 0.5), 0, 255).astype(np.uint8)
    out_rgb = cv2.fastNlMeansDenoising(noisy, None, h, 7, 21)
    out_lab = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(noisy[..., ::-1]), None, h, h_color, 7, 21)[..., ::-1]
    for name, out in [('rgb', out_rgb), ('lab', out_lab)]:
        px = [[int(v) for v in out[y, x]] for (y, x) in PIXELS]
        print(f"{{ space: '{name}', sigma: {sigma}, h: {h}, hColor: {h_color}, inputPsnr: {psnr(noisy, clean):.4f}, psnr: {psnr(out, clean):.4f}, mean: {out.mean():.4f}, pixels: {px} }},")

print('// DCP')
H, W = 64, 80
J = clean_image(H, W) / 255.0
yy = np.arange(H, dtype=np.float64)[:, None] * np.ones((1, W))
d = 0.1 + 0.9 * (1 - yy / (H - 1))
t_true = np.exp(-3.0 * d)
A_true = 0.8
I = J * t_true[..., None] + A_true * (1 - t_true[..., None])
I32 = I.astype(np.float32)  # the test stores the image as float32 too
I = I32.astype(np.float64)
kernel = np.ones((15, 15), np.uint8)
dark = cv2.erode(I.min(axis=2), kernel)
n = H * W
k = max(1, int(np.floor(n * 0.001)))
order = np.argsort(-dark.reshape(-1), kind='stable')[:k]
flat = I.reshape(-1, 3)
best = order[np.argmax(flat[order].sum(axis=1))]  # argmax: first of equal sums (order is by dark, then index)
A = flat[best]
raw = 1 - 0.95 * cv2.erode((I / A).min(axis=2), kernel)
t = guided_filter_color(I, raw, 20, 1e-3)
Jr = (I - A) / np.maximum(t, 0.1)[..., None] + A
J8 = np.floor(np.clip(Jr, 0, 1) * 255 + 0.5)
I8 = np.floor(np.clip(I, 0, 1) * 255 + 0.5)
print(f"A: [{A[0]:.6f}, {A[1]:.6f}, {A[2]:.6f}], meanT: {t.mean():.6f}, meanRawT: {raw.mean():.6f}, inputPsnr: {psnr(I8, J * 255):.4f}, psnr: {psnr(J8, J * 255):.4f},")
print('tAt: [' + ', '.join(f'{t[y, x]:.6f}' for (y, x) in PIXELS) + '],')
print('jAt: [' + ', '.join('[' + ', '.join(f'{v:.6f}' for v in Jr[y, x]) + ']' for (y, x) in PIXELS) + '],')
# guided filter alone, grey 2-D input p = a smooth ramp plus a checker, colour guide I
p = ((yy / H) + 0.3 * ((np.arange(W)[None, :] // 5 + np.arange(H)[:, None] // 5) % 2)).astype(np.float32)
q = cv2.ximgproc.guidedFilter(I32, p, 4, 1e-2).astype(np.float64)
q_np = guided_filter_color(I, p, 4, 1e-2)
assert np.abs(q - q_np).max() < 1e-4, np.abs(q - q_np).max()  # the numpy filter = OpenCV's where OpenCV keeps the determinant
print('gfAt: [' + ', '.join(f'{q[y, x]:.6f}' for (y, x) in PIXELS) + '],')
qg = cv2.ximgproc.guidedFilter(I32[..., 1].copy(), p, 4, 1e-2).astype(np.float64)
print('gfGreyAt: [' + ', '.join(f'{qg[y, x]:.6f}' for (y, x) in PIXELS) + '],')

print('// Lab (cv2.cvtColor float32, COLOR_LRGB2Lab: L 0..100, a, b unshifted)')
cols = np.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.2, 0.5, 0.8], [0.9, 0.1, 0.3], [0.004, 0.006, 0.002]]], np.float32)
lab = cv2.cvtColor(cols, cv2.COLOR_LRGB2Lab)[0]
print('lab: [' + ', '.join('[' + ', '.join(f'{v:.4f}' for v in c) + ']' for c in lab) + '],')
