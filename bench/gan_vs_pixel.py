"""Adversarial (`--gan`) against pixel-loss training at equal epoch budget, on synthetic pairs.

Both models see the same HR images (`pssr.data.synthetic`, crappified on the fly by PSSR's EM crappifier, 2x) for the
same number of epochs: the pixel model for `pre + adv` one-cycle epochs, the GAN model for `pre` epochs of pixel
pre-training and `adv` adversarial epochs. Both restore held-out images, scored by `pssr.evaluate` (PSNR, SSIM, FRC
resolution in px: smaller is better; and the hallucination guard's consistency gain over bilinear).

    .venv/bin/python bench/gan_vs_pixel.py --pre 6 --adv 6 --kind fluo

Writes bench/results/gan_vs_pixel.json with the machine's load average. Not a test: minutes on a CPU.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

import numpy as np, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pssr.io import atomic_write
from pssr.data import synthetic, write_synthetic
from pssr.crappify import get_crappifier
from pssr.evaluate import evaluate_image, model_degradation
from pssr.learner import TrainConfig, train
from pssr.predict import restore


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--pre', type=int, default=6); ap.add_argument('--adv', type=int, default=6)
    ap.add_argument('--kind', default='fluo'); ap.add_argument('--n-train', type=int, default=6)
    ap.add_argument('--n-test', type=int, default=4); ap.add_argument('--size', type=int, default=256)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    write_synthetic(tmp / 'hr', a.kind, n=a.n_train, size=a.size, seed=0)
    common = dict(hr=str(tmp / 'hr'), crappifier='em', arch='unet_small', scale=2, size=64, bs=4, tiles_per_image=8, lr=4e-3,
                  models_dir=str(tmp / 'models'), seed=0)
    runs, t = {}, {}
    for name, kw in (('pixel', dict(epochs=a.pre + a.adv)), ('gan', dict(epochs=a.pre, loss='gan', gan_epochs=a.adv))):
        t0 = time.perf_counter(); train(TrainConfig(name=name, **common, **kw)); t[name] = time.perf_counter() - t0
        runs[name] = tmp / 'models' / f'{name}.pth'
    crap, rows = get_crappifier('em', 2), []
    for i in range(a.n_test):
        gt = synthetic(a.kind, n=1, size=a.size, seed=100 + i)[0]
        lr = np.asarray(crap(gt, np.random.default_rng(100 + i)), np.float32)
        for name, m in runs.items():
            tab = evaluate_image(lr, gt, 2, lambda x, m=m: restore(m, x, progress=False), name=f'{a.kind}{i}',
                                 degrade=model_degradation(m)).table.set_index('method')
            rows.append(dict(image=i, model=name, **{k: float(tab.loc['model', k]) for k in ('psnr', 'ssim', 'frc_px', 'consistency_gain')},
                             bilinear_psnr=float(tab.loc['bilinear', 'psnr']), bilinear_frc_px=float(tab.loc['bilinear', 'frc_px'])))
    import pandas as pd
    df = pd.DataFrame(rows)
    summary = df.groupby('model').mean(numeric_only=True).drop(columns='image')
    print(summary.round(3).to_string())
    out = dict(args=vars(a), train_seconds=t, loadavg=os.getloadavg(), rows=rows, summary=summary.reset_index().to_dict('records'))
    res = ROOT / 'bench' / 'results' / 'gan_vs_pixel.json'
    with atomic_write(res, 'w') as f: json.dump(out, f, indent=1)
    print('load average', os.getloadavg(), '->', res)


if __name__ == '__main__': main()
