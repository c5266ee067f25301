"""Adversarial (`--gan`) against pixel-loss fine-tuning at an equal number of optimiser steps, on simulated pairs.

One pixel-loss model is pre-trained (`--pre` epochs of one-cycle, as `pssr train`); from the same weights, the pixel
model is fine-tuned for `--adv` epochs with the pixel loss alone and each GAN model for the same number of generator
steps with pixel + `w` x patch-critic loss (`pssr.gan.gan_learner`; its critic steps come on top), at a tenth of the
peak learning rate as `pssr.gan.train_gan` (`--gan-lr-divs`: other generator learning rates, each with its own pixel
control at the same rate). `--critic-pre N`: the critic is first trained alone for N batches on generated vs real HR
crops (fastai decrappify's critic pre-training). Steps do not depend on the machine's load; CPU seconds are reported
too. Held-out images (fixed whatever `--seed`) are scored by `pssr.evaluate` (PSNR, SSIM, FRC resolution in px: smaller
is better, also per image; the guard's local chi-square and flagged percentage).

    .venv/bin/python bench/gan_vs_pixel.py --pre 40 --adv 20 --crappifier em --weights 0.005 0.02 0.1
    .venv/bin/python bench/gan_vs_pixel.py --psf-sigma 2 --weights 0.005 --critic-pre 0 200 --gan-lr-divs 10 100 --seed 1 --tag _s1

Writes bench/results/gan_vs_pixel_<crappifier><tag>.json with the machine's load average. Not a test: minutes on a CPU.
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
    out = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
    return {**out, 'frc_px_per_image': [round(r['frc_px'], 3) for r in rows]}


def pretrain_critic(glearn, steps: int, lr: float = 1e-3) -> float:
    "Train `glearn`'s critic alone for `steps` batches on generated vs real HR crops (decrappify's critic pre-training); last loss."
    gen, crit = glearn.model.generator, glearn.model.critic
    bce, opt = torch.nn.BCEWithLogitsLoss(), torch.optim.Adam(crit.parameters(), lr, betas=(0.5, 0.99))
    gen.eval(); crit.train(); done, loss = 0, float('nan')
    while done < steps:
        for x, y in glearn.dls.train:
            with torch.no_grad(): fake = gen(x)
            r, f = crit(y), crit(fake)
            l = (bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f))) / 2
            opt.zero_grad(); l.backward(); opt.step(); done, loss = done + 1, float(l)
            if done >= steps: break
    return round(loss, 4)


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
    ap.add_argument('--gan-lr-divs', type=float, nargs='+', default=None, help='GAN generator learning rates to try (peak / this); default --gen-lr-div')
    ap.add_argument('--critic-pre', type=int, nargs='+', default=[0], help='critic pre-training steps to try before the adversarial phase (0: none)')
    ap.add_argument('--psf-sigma', type=float, default=None, help="with --crappifier physical: PSF sigma in HR px (photons 200, read noise 2, area binning)")
    ap.add_argument('--seed', type=int, default=0, help='seed of training images, initialisation and batches (held-out images fixed)')
    ap.add_argument('--tag', default='', help='suffix of the result file')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    write_synthetic(tmp / 'hr', a.kind, n=a.n_train, size=a.size, seed=a.seed)
    crappifier = a.crappifier if a.psf_sigma is None else dict(name='PhysicalCrappifier', scale=2, psf_sigma=a.psf_sigma, binning='area',
                                                                photons=200.0, read_noise=2.0, offset=100.0, bits=16)
    cfg = TrainConfig(name='pre', hr=str(tmp / 'hr'), crappifier=crappifier, arch='unet_small', scale=2, size=64, bs=4, tiles_per_image=8,
                      lr=4e-3, models_dir=str(tmp / 'models'), seed=a.seed, epochs=a.pre)
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
    variants = [(w, c, d) for w in a.weights for c in a.critic_pre for d in (a.gan_lr_divs or [a.gen_lr_div])]
    pixel_divs = list(dict.fromkeys([a.gen_lr_div, *(a.gan_lr_divs or [])]))  # the pixel control at every generator learning rate tried
    for v in [*pixel_divs, *variants]:
        learn.model.load_state_dict(state); torch.manual_seed(a.seed)
        t0, extra = time.process_time(), {}
        if not isinstance(v, tuple):
            learn.fit(a.adv, (cfg.lr or DEFAULT_LR) / v); net, gen_steps = learn.model, a.adv * nb
            name = 'pixel' + (f'_lrdiv{v:g}' if v != a.gen_lr_div else ''); extra['gen_lr_div'] = v
        else:  # one critic step per generator step: twice the epochs for the same generator steps
            w, c, d = v
            g = gan_learner(learn, dataclasses.replace(cfg, loss='gan', gan_weight=w))
            if c: extra['critic_pre_loss'] = pretrain_critic(g, c)
            g.fit(2 * a.adv, (cfg.lr or DEFAULT_LR) / d); net, gen_steps = g.model.generator, a.adv * nb
            name = f'gan_w{w:g}' + (f'_crit{c}' if c else '') + (f'_lrdiv{d:g}' if d != a.gen_lr_div else '')
            extra.update(weight=w, critic_pre_steps=c, gen_lr_div=d)
        res['runs'][name] = dict(steps=a.pre * nb + gen_steps, fine_tune_generator_steps=gen_steps,
                                 fine_tune_cpu_s=round(time.process_time() - t0, 1), **extra, **score(net, tests, degrade))
        print(name, res['runs'][name], flush=True)
    res['crappifier_dict'] = crap.to_dict()
    res['loadavg'] = os.getloadavg()
    res['cpu'] = 'AMD EPYC, 2 cores shared with other jobs; 1 torch thread'
    stem = Path(a.crappifier).stem if a.psf_sigma is None else f'physical_psf{a.psf_sigma:g}'
    out = ROOT / 'bench' / 'results' / f'gan_vs_pixel_{stem}{a.tag}.json'
    with atomic_write(out, 'w') as f: json.dump(res, f, indent=1)
    import pandas as pd
    print(pd.DataFrame(res['runs']).T.to_string())
    print('load average', res['loadavg'], '->', out)


if __name__ == '__main__': main()
