"""Self-supervised denoising of real low-SNR fluorescence (GigaDB BPAE) from the noisy images alone.

1. Diagnosis (no training): is the noise pixel-independent? Autocorrelation of the residual `low - affine(high)` at
   lags 1 (raw, and high-passed: the residual minus its Gaussian(4 px) blur, which removes the low-frequency
   mismatch between the two acquisitions). Diagonal sub-image pairs need the lag-(1, 1) and (1, -1) correlations
   to be ~0; a lag-(0, 1) correlation (a confocal line scan) only matters when the model is applied to the full image.
2. Training exactly as `pssr train` does it, through the command line (the command is recorded in the JSON):
   `pssr train --noisy LOW_SNR --self-supervised MODE --arch unet_small --size 64 --tiles 500 --epochs 8
   --valid-pct 0.34` (1 of the 3 images is held out for validation, so one field is restored by a model that never
   trained on it). `--mode subsample` (the default, as `pssr train` chooses for 2D images): both diagonal sub-image
   pairs, half-pixel correction, MSE; `--mode blindspot`: blind-spot items at full resolution, the blind spot's shape
   measured per image (`pssr.selfsup.blind_axis`), MSE on the hidden pixels. `--per-image`: one model per image,
   trained on that image alone (a band of 10 % of its rows validates), as Noise2Void is used.
3. Scoring against the high-SNR partner (used only here) with `pssr.evaluate.psnr_normalized` / `ssim_normalized`
   (the same percentile normalisation of the partner and least-squares affine fit of every candidate, full image):
   the noisy input; a Gaussian filter with the best sigma chosen WITH the ground truth (an oracle); NL-means
   (`skimage.restoration.denoise_nl_means`, sigma from `estimate_sigma`, h = 0.8 sigma as skimage recommends for
   fast mode); the model as `pssr predict` applies it (a plain sub-image model: `pssr.selfsup.SubImages`, four phases
   averaged; one trained with Neighbor2Neighbor's regulariser, `n2n_gamma > 0`: the full image), the same with `--tta`, and, for the diagnosis, the model applied to the full image, to the four sub-images
   (`SubImages`), and the mean of both (two estimates whose errors differ: the sub-image one is blind to
   line-correlated noise, the full-image one keeps the full sampling).

    .venv/bin/python bench/selfsup_gigadb.py          # bench/results/selfsup_gigadb.json: ~7 min wall (needs PyWavelets: `.[bench]`)
    .venv/bin/python bench/selfsup_gigadb.py --report

The other runs of the same benchmark, each shown by the notebook:
- selfsup_gigadb_3000steps.json: `--epochs 24` (3000 steps);
- selfsup_gigadb_blindspot_shared.json: `--mode blindspot --epochs 24` (one blind-spot model, the nucleus held out);
- selfsup_gigadb_blindspot_per_image.json: one blind-spot model per image, 2500 steps of 2 × 128² crops each, run as
  two processes (`--images`: rows merged into an existing --out of the same settings):
      .venv/bin/python bench/selfsup_gigadb.py --mode blindspot --per-image --images membrane --size 128 --bs 2 --epochs 10 --out F &
      .venv/bin/python bench/selfsup_gigadb.py --mode blindspot --per-image --images mito-confocal nucleus --size 128 --bs 2 --epochs 10 --out F
- selfsup_gigadb_blindspot_per_image_lr_resnet.json: the same per-image runs with `--arch lr_resnet` (the default
  network) and `--no-tta`, run as three processes (one `--images` each, separate --out files, merged by the rule above);
- selfsup_gigadb_n2n.json: sub-image pairs with Neighbor2Neighbor's regulariser (commit e8b4046; not adopted).
Not a test: it needs the shared data.
"""
import argparse, contextlib, io, json, os, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
from selfsup_compare import cpu_name
from pssr.io import atomic_write, shared_data_dir

RESULTS = ROOT / 'bench' / 'results' / 'selfsup_gigadb.json'
SIGMAS = (0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4)  # px, the Gaussian oracle's candidates
LAGS = ((0, 1), (1, 0), (1, 1), (1, -1), (0, 2))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--mode', choices=('subsample', 'blindspot'), default='subsample', help="the self-supervision trained (pssr train --self-supervised; the default: what pssr train does with 2D images)")
    p.add_argument('--per-image', action='store_true', help='one model per image, trained on that image alone (a band of its rows validates), as Noise2Void is used; default: one model, one image held out')
    p.add_argument('--images', nargs='+', default=None, help='with --per-image: only these images (stems); their rows are merged into an existing --out of the same settings')
    p.add_argument('--bs', type=int, default=8, help='crops per batch')
    p.add_argument('--epochs', type=int, default=8)
    p.add_argument('--tiles', type=int, default=500, help='crops per training image per epoch (2 training images, batch 8: 125 steps per epoch)')
    p.add_argument('--size', type=int, default=64, help='crop (px); sub-images are cut from 2*size px crops')
    p.add_argument('--arch', default='unet_small')
    p.add_argument('--data', type=Path, default=None)
    p.add_argument('--workdir', type=Path, default=Path.home() / '.cache' / 'pssr-bench', help='temporary files go below it')
    p.add_argument('--out', type=Path, default=RESULTS)
    p.add_argument('--model', type=Path, default=None, help='score this saved model instead of training one (its record says how it was trained)')
    p.add_argument('--train-note', default=None, help='with --model: how it was trained (steps, CPU minutes, load), stored in the JSON')
    p.add_argument('--no-tta', action='store_true', help='skip the --tta row (8 passes: slow on the 2048² image)')
    p.add_argument('--report', action='store_true')
    return p.parse_args(argv)


def lag_corr(r, dy: int, dx: int) -> float:
    "Correlation of `r` with itself shifted by (dy, dx) px."
    import numpy as np
    h, w = r.shape
    a = r[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
    b = r[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def noise_diagnosis(lo, gt) -> dict:
    "Lag correlations of the residual `lo - affine(gt)`, raw and high-passed (minus its Gaussian(4 px) blur)."
    from scipy import ndimage
    from pssr.evaluate import fit_affine
    r = lo - fit_affine(lo, gt)
    hp = r - ndimage.gaussian_filter(r, 4)
    return {f'{dy},{dx}': dict(raw=round(lag_corr(r, dy, dx), 3), highpass=round(lag_corr(hp, dy, dx), 3)) for dy, dx in LAGS}


def baselines(lo, gt) -> tuple:
    "The noisy input, the best-sigma Gaussian (chosen with `gt`: an oracle) and NL-means with its estimated sigma; and those sigmas."
    from scipy import ndimage
    from skimage.restoration import denoise_nl_means, estimate_sigma
    from pssr.evaluate import psnr_normalized
    from pssr.io import normalize_percentile
    n = normalize_percentile(lo)
    best = max(SIGMAS, key=lambda s: psnr_normalized(gt, ndimage.gaussian_filter(n, s)))
    sigma = float(estimate_sigma(n))
    return ({'noisy input': lo, 'Gaussian (oracle σ)': ndimage.gaussian_filter(n, best),
             'NL-means (estimated σ)': denoise_nl_means(n, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6)},
            dict(gauss_oracle_sigma=best, nlm_sigma=round(sigma, 5)))


def report(out: Path):
    import pandas as pd
    r = json.loads(out.read_text())
    print(f"{r['command']}\n{r['machine']}, load {r['load_start']} -> {r['load_end']}, "
          f"{r['settings']['total_steps']} steps: {r['train_cpu_min']} CPU min / {r['train_wall_min']} wall min; held out: {r['held_out']}")
    print(pd.DataFrame({tuple(k.split(' | ')): v for k, v in r['table'].items()}).T.round(3).to_string())


def train_cli(args: list) -> tuple:
    "`pssr train ARGS` in this process: (CPU s, wall s); raises on a non-zero exit."
    from pssr.cli import main as cli
    c0, t0 = time.process_time(), time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli(['train', *map(str, args)])
    if code: raise SystemExit(f'pssr train failed ({code}): {err.getvalue()[-2000:]}')
    return time.process_time() - c0, time.perf_counter() - t0


def main(argv=None):
    a = parse_args(argv)
    if a.report: return report(a.out)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    try: import pywt  # noqa: F401  skimage's estimate_sigma needs it: fail now, not after the training
    except ImportError: sys.exit('PyWavelets is missing: pip install -e ".[bench]"')
    import numpy as np, torch
    torch.set_num_threads(1)
    from pssr.evaluate import psnr_normalized, ssim_normalized
    from pssr.io import read_image
    from pssr.model_io import load_model
    from pssr.predict import restore
    from pssr.io import normalize_percentile
    from pssr.selfsup import SubImages, blind_axis, line_correlation
    data = a.data or (shared_data_dir() / 'fluo/gigadb_bpae' if shared_data_dir() else None)
    if data is None or not (data / 'low_snr').is_dir(): sys.exit('GigaDB BPAE data not found (shared/data/fluo/gigadb_bpae)')
    load0 = os.getloadavg()
    a.workdir.mkdir(parents=True, exist_ok=True)
    table, diag, models = {}, {}, {}
    images = [p for p in sorted((data / 'low_snr').glob('*.png')) if not (a.per_image and a.images) or p.stem in a.images]
    sources = {p.stem: p for p in images} if a.per_image else {'gigadb': data / 'low_snr'}  # model name -> what it trains on
    cpu = wall = 0.
    with tempfile.TemporaryDirectory(dir=a.workdir) as d:
        for name, src in sources.items():
            args = ['--noisy', src, '--self-supervised', a.mode, '--arch', a.arch, '--size', a.size, '--bs', a.bs, '--tiles', a.tiles,
                    '--epochs', a.epochs, '--valid-pct', 0.1 if a.per_image else 0.34, '--name', name, '--models-dir', d]
            c, w = train_cli(args) if a.model is None else (float('nan'), float('nan'))
            cpu, wall = cpu + c, wall + w
            models[name] = load_model(a.model or Path(d) / name)  # as `pssr predict` loads it: SubImages around a sub-image network
        held_out = [] if a.per_image else models['gigadb'][1].data['split']['valid_images']
        for p in images:
            net, rec = models[p.stem if a.per_image else 'gigadb']
            lo, gt = (read_image(q)[0].astype(np.float32) for q in (p, data / 'high_snr' / p.name))
            base, sig = baselines(lo, gt)
            n = normalize_percentile(lo)
            diag[p.stem] = dict(noise_lag_correlation=noise_diagnosis(lo, gt), **sig, held_out=p.name in {Path(h).name for h in held_out},
                                line_correlation=round(line_correlation(n), 3), blind_axis=blind_axis(n))
            t0 = time.perf_counter()
            model_out = restore(net, lo, progress=False)
            t_pred = time.perf_counter() - t0
            cands = {**base, 'self-supervised (pssr predict)': model_out,
                     **({} if a.no_tta else {'self-supervised, --tta': restore(net, lo, progress=False, tta=True)[0]})}
            if isinstance(net, SubImages):  # a sub-image model: also on the full image, and the mean of both (diagnosis)
                full = restore(net.model, lo, progress=False)
                cands.update({'self-supervised, full image (diagnosis)': full, 'self-supervised, sub-images (diagnosis)': model_out,
                              'self-supervised, mean of sub-image and full image': (model_out + full) / 2})
            for k, v in cands.items():
                table[f'{p.stem} | {k}'] = dict(psnr=round(psnr_normalized(gt, v), 3), ssim=round(ssim_normalized(gt, v), 4))
            diag[p.stem]['predict_wall_s'] = round(t_pred, 1)
            print(p.stem, {k: v for k, v in table.items() if k.startswith(p.stem)}, flush=True)
    n_train = len(rec.data['split']['train_images'])
    cmd = ('pssr train ' + ' '.join(str(x) for x in args[:-4]).replace(str(src), 'LOW_SNR/IMAGE.png' if a.per_image else str(src))
           + (' --name IMAGE; pssr predict models/IMAGE.pth LOW_SNR/IMAGE.png (one model per image)' if a.per_image else ' --name gigadb; pssr predict models/gigadb.pth LOW_SNR'))
    res = dict(command=cmd if a.model is None else f'scored a given model ({a.model.name}); {a.train_note}',
               settings=dict(epochs=len(rec.history) if a.model else a.epochs, tiles=None if a.model else a.tiles, train_images=n_train, bs=rec.config.bs,
                             total_steps=None if a.model else a.epochs * (a.tiles * n_train // rec.config.bs), size=a.size, arch=a.arch, torch_threads=1,
                             per_image=a.per_image,
                             n2n_gamma=(rec.data.get('split') or {}).get('n2n_gamma', 0.), mode=(rec.data.get('split') or {}).get('self_supervised'),
                             blind_axes={k: v for _, r in models.values() for k, v in ((r.data.get('split') or {}).get('blind_axes') or {}).items()}),
               held_out=held_out, machine=f'{cpu_name()}, {os.cpu_count()} cores (shared with other jobs)',
               load_start=[round(x, 2) for x in load0], load_end=[round(x, 2) for x in os.getloadavg()],
               train_cpu_min=None if a.model else round(cpu / 60, 2), train_wall_min=None if a.model else round(wall / 60, 1), valid_loss={n: [round(h['valid_loss'], 6) for h in r.history] for n, (_, r) in models.items()} if a.per_image else [round(h['valid_loss'], 6) for h in rec.history],
               date=time.strftime('%Y-%m-%d %H:%M'), diagnosis=diag, table=table)
    if a.per_image and a.images and a.out.exists():  # merge with the other images' rows (same settings)
        old = json.loads(a.out.read_text())
        if old.get('settings', {}).get('per_image') and {k: v for k, v in old['settings'].items() if k != 'blind_axes'} == {k: v for k, v in res['settings'].items() if k != 'blind_axes'}:
            for k in ('table', 'diagnosis', 'valid_loss'): res[k] = {**old[k], **res[k]}
            res['settings']['blind_axes'] = {**old['settings']['blind_axes'], **res['settings']['blind_axes']}
            res['train_cpu_min'] = round(res['train_cpu_min'] + old['train_cpu_min'], 2)
            res['train_wall_min'] = round(res['train_wall_min'] + old['train_wall_min'], 1)
            res['load_start'], res['date'] = [max(x, y) for x, y in zip(old['load_start'], res['load_start'])], f"{old['date']}, {res['date']}"
    with atomic_write(a.out, 'w') as f: json.dump(res, f, indent=1)
    report(a.out)


if __name__ == '__main__':
    main()
