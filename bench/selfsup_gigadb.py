"""Self-supervised denoising of real low-SNR fluorescence (GigaDB BPAE) from the noisy images alone.

Trains `pssr.selfsup`'s sub-image self-supervision (both diagonal pairs of every 2x2 block, half-pixel correction)
on the three low-SNR images of `shared/data/fluo/gigadb_bpae/low_snr` for a fixed number of optimiser steps, applies
the model to the full image and, at its training scale, to the four sub-images (`restore_subimages`: interleaved
or averaged), and scores it with the baselines against the high-SNR partners (used only for
scoring): the noisy input, a Gaussian filter with the best sigma chosen WITH the ground truth (an oracle), and
`skimage.restoration.denoise_nl_means` with sigma estimated from the data (`skimage.restoration.estimate_sigma`).

    .venv/bin/python bench/selfsup_gigadb.py          # ~20 min wall on the loaded shared 2-core machine
    .venv/bin/python bench/selfsup_gigadb.py --report

Results: bench/results/selfsup_gigadb.json. Not a test: it needs the shared data.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
from selfsup_compare import cpu_name
from pssr.io import atomic_write, shared_data_dir

RESULTS = ROOT / 'bench' / 'results' / 'selfsup_gigadb.json'
SIGMAS = (0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3)  # px, the Gaussian oracle's candidates


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=8)
    p.add_argument('--steps', type=int, default=40, help='optimiser steps per epoch')
    p.add_argument('--size', type=int, default=64, help='sub-image crop (px); cut from 2*size px crops')
    p.add_argument('--arch', default='unet_small')
    p.add_argument('--data', type=Path, default=None)
    p.add_argument('--workdir', type=Path, default=Path.home() / '.cache' / 'pssr-bench', help='temporary files go below it')
    p.add_argument('--out', type=Path, default=RESULTS)
    p.add_argument('--report', action='store_true')
    return p.parse_args(argv)


def baselines(lo, gt) -> dict:
    "The noisy input, the best-sigma Gaussian (chosen with `gt`: an oracle) and NL-means with its estimated sigma."
    import numpy as np
    from scipy import ndimage
    from skimage.restoration import denoise_nl_means, estimate_sigma
    from pssr.evaluate import psnr_normalized
    from pssr.io import normalize_percentile
    n = normalize_percentile(lo)
    gauss = max((ndimage.gaussian_filter(n, s) for s in SIGMAS), key=lambda g: psnr_normalized(gt, g))
    sigma = float(estimate_sigma(n))
    return {'noisy input': lo, 'Gaussian (oracle σ)': gauss,
            'NL-means (estimated σ)': denoise_nl_means(n, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6)}


def report(out: Path):
    import pandas as pd
    r = json.loads(out.read_text())
    print(f"{r['settings']}\n{r['machine']}, load {r['load_start']} -> {r['load_end']}, training {r['train_cpu_min']} CPU min / {r['train_wall_min']} wall min")
    print(pd.DataFrame({tuple(k.split(' | ')): v for k, v in r['table'].items()}).T.round(3).to_string())


def main(argv=None):
    a = parse_args(argv)
    if a.report: return report(a.out)
    import torch
    torch.set_num_threads(1)
    from pssr.evaluate import psnr_normalized, ssim_normalized
    from pssr.io import read_image
    from pssr.learner import TrainConfig
    from pssr.predict import restore
    from pssr.selfsup import noisy_dataloaders, fit_steps, restore_subimages, SUBIMAGE_COMBINE
    data = a.data or (shared_data_dir() / 'fluo/gigadb_bpae' if shared_data_dir() else None)
    if data is None or not (data / 'low_snr').is_dir(): sys.exit('GigaDB BPAE data not found (shared/data/fluo/gigadb_bpae)')
    load0 = os.getloadavg()
    a.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.workdir) as d:
        cfg = TrainConfig(name='gigadb', noisy=str(data / 'low_snr'), self_supervised='subsample', scale=1, size=a.size, arch=a.arch,
                          epochs=a.epochs, models_dir=d, valid_pct=0.34)
        dls = noisy_dataloaders(cfg.noisy, 'subsample', True, size=a.size, bs=cfg.bs, valid_pct=cfg.valid_pct, tiles_per_image=16)
        learn, cpu, wall, n = fit_steps(cfg, dls, a.steps)
        model, table = learn.model.eval(), {}
        for p in sorted((data / 'low_snr').glob('*.png')):
            lo, gt = read_image(p)[0], read_image(data / 'high_snr' / p.name)[0]
            cands = {**baselines(lo, gt), 'self-supervised, full image': restore(model, lo, progress=False),
                     **{f'self-supervised, sub-images ({c})': restore_subimages(model, lo, c) for c in SUBIMAGE_COMBINE}}
            for k, v in cands.items(): table[f'{p.stem} | {k}'] = dict(psnr=round(psnr_normalized(gt, v), 3), ssim=round(ssim_normalized(gt, v), 4))
            print(p.stem, {k: v for k, v in table.items() if k.startswith(p.stem)}, flush=True)
    res = dict(settings=dict(epochs=a.epochs, steps_per_epoch=a.steps, total_steps=n, bs=cfg.bs, size=a.size, arch=a.arch, torch_threads=1),
               machine=f'{cpu_name()}, {os.cpu_count()} cores (shared with other jobs)', load_start=[round(x, 2) for x in load0],
               load_end=[round(x, 2) for x in os.getloadavg()], train_cpu_min=round(cpu / 60, 2), train_wall_min=round(wall / 60, 1),
               date=time.strftime('%Y-%m-%d %H:%M'), table=table)
    with atomic_write(a.out, 'w') as f: json.dump(res, f, indent=1)
    report(a.out)


if __name__ == '__main__':
    main()
