"""Why FRC against the ground truth favours the pixel-loss (conditional-mean) restoration over a posterior sample (what a GAN aims at).

For any estimator P of the truth X from the data y, per Fourier ring: E<X,P> = E<E[X|y],P> <= sqrt(E|E[X|y]|^2 E|P|^2)
(Cauchy-Schwarz), so the conditional mean m = E[X|y] (the minimiser of the pixel MSE) has the highest correlation with X
in every ring, whatever P's ring-wise scale; a perfect posterior sample S (E<X,S> = E|m|^2, E|S|^2 = E|X|^2) has
FRC_S = FRC_m ** 2. This script checks it on Gaussian random images with a known spectrum, blurred and noisy, where
m (the Wiener filter) and exact posterior samples are available, scored by `pssr.evaluate.method_metrics` as the models are.

    .venv/bin/python bench/gan_frc_bound.py

Writes bench/results/gan_frc_bound.json. Not a test: a few seconds.
"""
import json, os, sys
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pssr.io import atomic_write
from pssr.evaluate import method_metrics


def gaussian_case(size=256, psf_sigma=2.0, noise=0.02, seed=0) -> dict:
    "Truth with a 1/(1+(f/f0)^2)^1.5 spectrum, Gaussian blur `psf_sigma` px + white noise: metrics of the Wiener mean and of a posterior sample."
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None]
    f2 = fy ** 2 + fx ** 2
    P = 1 / (1 + f2 / 0.05 ** 2) ** 1.5  # prior power per frequency
    H = np.exp(-2 * np.pi ** 2 * psf_sigma ** 2 * f2)  # Gaussian PSF transfer function
    white = lambda: np.fft.fft2(rng.standard_normal((size, size)))  # unit-power Hermitian noise spectrum
    X = np.sqrt(P) * white()
    N = (noise * np.fft.ifft2(X).real.std()) ** 2  # white-noise power: `noise` x the truth's std in real space
    Y = H * X + np.sqrt(N) * white()
    M = H * P / (H ** 2 * P + N) * Y  # posterior mean (Wiener)
    S = M + np.sqrt(P * N / (H ** 2 * P + N)) * white()  # exact posterior sample
    x, y, m, s = (np.fft.ifft2(v).real for v in (X, Y, M, S))
    out = {}
    for name, pred in (('blurred_input', y), ('posterior_mean', m), ('posterior_sample', s)):
        row, (freq, corr) = method_metrics(x, pred)
        out[name] = dict(psnr=round(row['psnr'], 3), frc_px=round(row['frc_px'], 3))
        out[name + '_curve'] = corr
    out['mean_abs(frc_sample - frc_mean**2)'] = round(float(np.mean(np.abs(out['posterior_sample_curve'] - out['posterior_mean_curve'] ** 2))), 3)
    for k in ('blurred_input', 'posterior_mean', 'posterior_sample'): del out[k + '_curve']
    return out


def main():
    res = {f'seed{s}': gaussian_case(seed=s) for s in (0, 1)}
    res['settings'] = dict(size=256, psf_sigma=2.0, noise='2 % of the truth std', prior='1/(1+(f/0.05)^2)^1.5')
    res['loadavg'] = os.getloadavg()
    out = ROOT / 'bench' / 'results' / 'gan_frc_bound.json'
    with atomic_write(out, 'w') as f: json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == '__main__': main()
