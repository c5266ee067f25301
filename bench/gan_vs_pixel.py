"""Adversarial (`--gan`) against pixel-loss fine-tuning at an equal number of optimiser steps, on simulated pairs.

One pixel-loss model is pre-trained (`--pre` epochs of one-cycle, as `pssr train`); from the same weights, the pixel
model is fine-tuned for `--adv` epochs with the pixel loss alone and each GAN model for the same number of generator
steps with pixel + `w` x patch-critic loss (`pssr.gan.gan_learner`; its critic steps come on top), all at a tenth of the
peak learning rate, as `pssr.gan.train_gan`. Steps do not depend on the machine's load; CPU seconds are reported too.
Held-out images are scored by `pssr.evaluate` (PSNR, SSIM, FRC resolution in px: smaller is better; the guard's
local chi-square and flagged percentage).

    .venv/bin/python bench/gan_vs_pixel.py --pre 40 --adv 20 --crappifier em --weights 0.005 0.02 0.1

Writes bench/results/gan_vs_pixel_<crappifier>.json with the machine's load average. Not a test: minutes on a CPU.
"""
import argparse, dataclasses, json, os, sys, tempfile, time
from pathlib import Path

import numpy as np, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pssr.io import atomic_write
from pssr.data import synthetic, write_synthetic, with_train_tiles
from pssr.crappify import get_crappifier
from pssr.evaluate import evaluate_image, clean_degradation
from pssr.learner import TrainConfig, train, DEFAULT_LR
from pssr.gan import gan_learner
from pssr.predict import restore

COLS = ('psnr', 'ssim', 'frc_px', 'consistency_chi2', 'flagged_pct')


def score(net, tests, degrade) -> dict:
    "Mean metrics of `net` and of bilinear over the held-out `(lr, gt)` pairs."
    net.eval()
    rows = []
    for i, (lr, gt) in enumerate(tests):
        t = evaluate_image(lr, gt, 2, lambda x: restore(net, x, progress=False), name=f'test{i}', degrade=degrade).table.set_index('method')
        rows.append({**{k: float(t.loc['model', k]) for k in COLS}, **{f'bilinear_{k}': float(t.loc['bilinear', k]) for k in ('psnr', 'ssim', 'frc_px')}})
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}


def above_nyquist_pct(img, scale: int = 2) -> float:
    "% of an HR image's (mean-subtracted) spectral energy above the LR Nyquist frequency: detail only a prior can restore."
    f = np.fft.fftshift(np.abs(np.fft.fft2(img - img.mean())) ** 2)
    fy, fx = np.meshgrid(*(np.fft.fftshift(np.fft.fftfreq(n)) for n in img.shape), indexing='ij')
    return float(100 * f[np.maximum(abs(fy), abs(fx)) > 0.5 / scale].sum() / f.sum())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--pre', type=int, default=40, help='pixel-loss pre-training epochs (shared)')
    ap.add_argument('--adv', type=int, default=20, help='fine-tuning epochs of the pixel model (GAN: the same generator steps)')
    ap.add_argument('--weights', type=float, nargs='+', default=[0.005, 0.02, 0.1], help='adversarial weights to try')
    ap.add_argument('--crappifier', default='em'); ap.add_argument('--kind', default='fluo')
    ap.add_argument('--n-train', type=int, default=6); ap.add_argument('--n-test', type=int, default=4)
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--gen-lr-div', type=float, default=10, help='fine-tuning learning rate = peak / this (pixel and GAN alike)')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    write_synthetic(tmp / 'hr', a.kind, n=a.n_train, size=a.size, seed=0)
    cfg = TrainConfig(name='pre', hr=str(tmp / 'hr'), crappifier=a.crappifier, arch='unet_small', scale=2, size=64, bs=4, tiles_per_image=8,
                      lr=4e-3, models_dir=str(tmp / 'models'), seed=0, epochs=a.pre)
    crap = cfg.get_crappifier()
    tests = []
    for i in range(a.n_test):
        gt = synthetic(a.kind, n=1, size=a.size, seed=100 + i)[0]
        tests.append((np.asarray(crap(gt, np.random.default_rng(100 + i)), np.float32), gt))
    degrade = clean_degradation(crap, 2)
    t0 = time.process_time()
    learn = train(cfg)
    nb = len(learn.dls.train)
    res = dict(args=vars(a), batches_per_epoch=nb, hr_energy_above_lr_nyquist_pct=round(float(np.mean([above_nyquist_pct(gt) for _, gt in tests])), 2), runs={'pretrained': dict(steps=a.pre * nb, cpu_s=round(time.process_time() - t0, 1),
                                                                             **score(learn.model, tests, degrade))})
    state = {k: v.clone() for k, v in learn.model.state_dict().items()}
    for w in [None, *a.weights]:
        learn.model.load_state_dict(state); torch.manual_seed(0)
        t0 = time.process_time()
        if w is None:
            learn.fit(a.adv, (cfg.lr or DEFAULT_LR) / a.gen_lr_div); net, name, gen_steps = learn.model, 'pixel', a.adv * nb
        else:  # one critic step per generator step: twice the epochs for the same generator steps
            g = gan_learner(learn, dataclasses.replace(cfg, loss='gan', gan_weight=w))
            g.fit(2 * a.adv, (cfg.lr or DEFAULT_LR) / a.gen_lr_div); net, name, gen_steps = g.model.generator, f'gan_w{w:g}', a.adv * nb
        res['runs'][name] = dict(steps=a.pre * nb + gen_steps, fine_tune_generator_steps=gen_steps,
                                 fine_tune_cpu_s=round(time.process_time() - t0, 1), **score(net, tests, degrade))
        print(name, res['runs'][name], flush=True)
    res['crappifier_dict'] = crap.to_dict()
    res['loadavg'] = os.getloadavg()
    res['cpu'] = 'AMD EPYC, 2 cores shared with other jobs; 1 torch thread'
    out = ROOT / 'bench' / 'results' / f'gan_vs_pixel_{Path(a.crappifier).stem}.json'
    with atomic_write(out, 'w') as f: json.dump(res, f, indent=1)
    import pandas as pd
    print(pd.DataFrame(res['runs']).T.to_string())
    print('load average', res['loadavg'], '->', out)


if __name__ == '__main__': main()
