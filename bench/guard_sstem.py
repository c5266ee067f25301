"""The hallucination guard on real ssTEM (ISBI 2012, `../shared/data/em/isbi2012_sstem`): is correct EM restoration flagged?

A light U-Net is trained briefly (8 epochs) on 24 slices, PSSR's EM crappifier at 4x; on the 6 other slices, crappified
the same way, the guard (`pssr.evaluate.trust`) scores the model, bilinear interpolation and the ground truth itself (a
perfect restoration of the noisy input). Prints one line per slice: (mean local chi-square, % flagged) of each, PSNR of
the model and of bilinear, and whether the model is warned about. Not a test (needs the shared data, minutes of CPU).

    .venv/bin/python bench/guard_sstem.py
"""
import os, sys, tempfile, time
from pathlib import Path

import numpy as np, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pssr.io import read_image, write_tiff, shared_data_dir
from pssr.learner import TrainConfig, train
from pssr.predict import restore
from pssr.crappify import get_crappifier
from pssr.evaluate import trust, model_degradation, baseline_upscale, psnr_normalized, trust_warning


def main():
    torch.set_num_threads(1)
    data = shared_data_dir()
    if data is None or not (data / 'em' / 'isbi2012_sstem').is_dir(): sys.exit('needs ../shared/data/em/isbi2012_sstem')
    src = sorted((data / 'em' / 'isbi2012_sstem').glob('*.png'))
    tmp = Path(tempfile.mkdtemp())
    for f in src[:24]: write_tiff(tmp / 'hr' / f'{f.stem}.tif', read_image(f)[0].astype(np.float32), None)
    t0 = time.process_time()
    train(TrainConfig(name='em', hr=str(tmp / 'hr'), crappifier='em', arch='unet_small', scale=4, size=128, bs=4, epochs=8, lr=4e-3,
                      tiles_per_image=4, models_dir=str(tmp / 'models'), seed=0))
    print(f'training {time.process_time() - t0:.0f} CPU s, load average {os.getloadavg()}')
    model = tmp / 'models' / 'em.pth'
    deg, crap = model_degradation(model), get_crappifier('em', 4)
    for f in src[24:]:
        gt = read_image(f)[0].astype(np.float32); gt = (gt - gt.min()) / np.ptp(gt)
        lr = np.asarray(crap(gt, np.random.default_rng(0)), np.float32)
        pred, bil = restore(model, lr, progress=False), baseline_upscale(lr, 4, 'bilinear')
        r = {k: trust(lr, o, deg)[1] for k, o in (('model', pred), ('bilinear', bil), ('truth', gt))}
        print(f.stem, {k: (round(v['consistency_chi2'], 2), round(v['flagged_pct'], 2)) for k, v in r.items()},
              f'PSNR model {psnr_normalized(gt, pred):.2f} bilinear {psnr_normalized(gt, bil):.2f}', 'warned' if trust_warning(r['model']) else 'not warned')


if __name__ == '__main__': main()
