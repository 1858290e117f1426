"""Independent expected values for test/metrics/metrics.test.ts (run by hand; the tests do not need Python).

Run:  /usr/bin/python3 test/eval/known_answers.py
Tools (Debian 12 packages): python3-skimage 0.19.3, python3-opencv 4.6.0, python3-numpy 1.24.2,
python3-scipy 1.10.1.

Images are integers 0..255 from the same formulas as makePair() in metrics.test.ts.
- PSNR RGB:   skimage.metrics.peak_signal_noise_ratio(a, b, data_range=255)
- SSIM RGB:   skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
              use_sample_covariance=False, data_range=255, channel_axis=2)
              cross-checked with BasicSR's _ssim formula re-typed with cv2.filter2D (below)
- Y:          BasicSR to_y_channel formula Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255 in float64,
              then the two calls above with channel_axis=None
- SSIM 3-D:   TextualDegRemoval metrics/psnr_ssim.py `_ssim_3d` re-typed in float64:
              scipy.ndimage.correlate(x, outer3(cv2.getGaussianKernel(11, 1.5)), mode='nearest')
"""
import numpy as np
import cv2
import scipy.ndimage as ndi
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def make_pair(h, w, seed):
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing='ij')
    a = (y * 5 + x * 3 + c * 40 + seed * 11 + (x * x + 3 * y * y) % 23) % 256
    d = (x * 13 + y * 7 + c * 3 + seed * 5) % 41 - 20
    b = np.clip(a + d, 0, 255)
    return a.astype(np.float64), b.astype(np.float64)


def to_y(img):
    return 16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0


def basicsr_ssim(x, y):
    C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    win = np.outer(k, k.transpose())
    f = lambda v: cv2.filter2D(v, -1, win)[5:-5, 5:-5]
    mu1, mu2 = f(x), f(y)
    s1 = f(x * x) - mu1 ** 2
    s2 = f(y * y) - mu2 ** 2
    s12 = f(x * y) - mu1 * mu2
    m = ((2 * mu1 * mu2 + C1) * (2 * s12 + C2)) / ((mu1 ** 2 + mu2 ** 2 + C1) * (s1 + s2 + C2))
    return m.mean()


def ssim3d(x, y):
    C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)[:, 0]
    k3 = k[:, None, None] * k[None, :, None] * k[None, None, :]
    f = lambda v: ndi.correlate(v, k3, mode='nearest')
    mu1, mu2 = f(x), f(y)
    s1 = f(x * x) - mu1 ** 2
    s2 = f(y * y) - mu2 ** 2
    s12 = f(x * y) - mu1 * mu2
    m = ((2 * mu1 * mu2 + C1) * (2 * s12 + C2)) / ((mu1 ** 2 + mu2 ** 2 + C1) * (s1 + s2 + C2))
    return m.mean()


for (h, w, seed, crop) in [(24, 20, 0, 0), (24, 20, 0, 3), (33, 41, 5, 0), (33, 41, 5, 4)]:
    a, b = make_pair(h, w, seed)
    if crop:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    ya, yb = to_y(a), to_y(b)
    psnr = peak_signal_noise_ratio(a, b, data_range=255)
    ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2)
    ssim_cv = np.mean([basicsr_ssim(a[..., i], b[..., i]) for i in range(3)])
    psnr_y = peak_signal_noise_ratio(ya, yb, data_range=255)
    ssim_y = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    ssim_y_cv = basicsr_ssim(ya, yb)
    s3 = ssim3d(a, b)
    print(f"{{ h: {h}, w: {w}, seed: {seed}, crop: {crop}, psnr: {psnr:.10f}, ssim: {ssim:.10f}, psnrY: {psnr_y:.10f}, ssimY: {ssim_y:.10f}, ssim3d: {s3:.10f} }},"
          f"  // cv2 check ssim {ssim_cv:.10f} ssimY {ssim_y_cv:.10f}")
