"""Train PSSR on real ssTEM slices in mode 'lr' and 'upsampled' (same epochs) and compare with bilinear.

Data: /work/shared/data/em/isbi2012_sstem (30 slices, 512 x 512). The last `--holdout` slices are never
trained on; each is normalised (percentiles), crappified with the EM crappifier (x4, fixed seed) and
restored (whole slice in one pass, and with `pssr.predict.restore` in tiles of the training LR crop
size). PSNR/SSIM against the normalised HR slice: `pssr.evaluate` if present, else skimage after
an affine (least-squares) intensity fit of the restoration to the truth.

    .venv/bin/python bench/train_em_compare.py [--epochs 3] [--arch resnet34] [--holdout 5]

Writes bench/results/train_em_compare.json. CPU: each model is sized to train in about 10 minutes.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pssr.io import read_image, normalize_percentile, list_images, atomic_write, shared_data_dir
from pssr.crappify import get_crappifier
from pssr.learner import TrainConfig, train, library_versions


def metrics_fn():
    "(psnr, ssim) on normalised images: pssr.evaluate's if it exists, else skimage after an affine fit."
    try:
        from pssr.evaluate import psnr_normalized, ssim_normalized
        return 'pssr.evaluate', lambda p, t: (float(psnr_normalized(t, p)), float(ssim_normalized(t, p)))  # (gt, pred)
    except ImportError:
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity
        def fit(p, t):
            A = np.stack([p.ravel(), np.ones(p.size)], 1)
            a, b = np.linalg.lstsq(A, t.ravel(), rcond=None)[0]
            return (a * p + b).astype(np.float32)
        def f(p, t):
            q = fit(p, t)
            return (float(peak_signal_noise_ratio(t, q, data_range=1.0)), float(structural_similarity(t, q, data_range=1.0)))
        return 'skimage+affine', f


def restore_whole(model, lr: np.ndarray) -> np.ndarray:
    "Restore one 2D LR image in a single pass (128 px LR is a multiple of 32)."
    with torch.no_grad(): return model(torch.from_numpy(lr)[None, None]).squeeze().numpy()


def restore_tiled(model, lr: np.ndarray, tile: int) -> np.ndarray:
    "Restore with `pssr.predict.restore` in LR tiles of the training crop size (overlap tile // 4)."
    from pssr.predict import restore
    return restore(model, lr, tile=tile, overlap=tile // 4, progress=False, device='cpu')


def evaluate_model(model, lr, score, lr_tile: int) -> dict:
    "Scores of whole-slice and training-size-tiled restoration, with timings."
    model = model.cpu().eval()
    res = {}
    for how, f in (('whole', restore_whole), ('tiled', lambda m, x: restore_tiled(m, x, lr_tile))):
        t0 = time.time()
        preds = [f(model, l) for l in lr]
        res[how] = {**score(preds), 'seconds_per_slice': round((time.time() - t0) / len(lr), 2)}
    return res


def bilinear(lr: np.ndarray, scale: int) -> np.ndarray:
    "Bilinear x`scale` (pixel centres aligned), pssr.evaluate's baseline if present."
    try:
        from pssr.evaluate import baseline_upscale
        return baseline_upscale(lr, scale, 'bilinear')
    except ImportError: pass
    return F.interpolate(torch.from_numpy(lr)[None, None], scale_factor=scale, mode='bilinear',
                         align_corners=False).squeeze().numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--arch', default='resnet34')
    ap.add_argument('--holdout', type=int, default=5)
    ap.add_argument('--tiles', type=int, default=8, help='crops per training slice per epoch')
    ap.add_argument('--bs', type=int, default=8)
    ap.add_argument('--size', type=int, default=128, help='HR crop size (same output size for both modes)')
    ap.add_argument('--lr', type=float, default=1e-3, help='one-cycle peak learning rate')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--modes', nargs='+', default=['lr', 'upsampled'])
    ap.add_argument('--out', default=str(ROOT/'bench'/'results'/'train_em_compare.json'))
    ap.add_argument('--eval-only', metavar='MODELS_DIR', help='skip training: evaluate em_compare_<mode> models saved there')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    shared = shared_data_dir()
    if shared is None: sys.exit('shared data not found (/work/shared/data)')
    files = list_images(shared/'em'/'isbi2012_sstem')
    train_files, test_files = files[:-a.holdout], files[-a.holdout:]
    work = Path(tempfile.mkdtemp(prefix='pssr_em_compare_'))
    (work/'hr').mkdir()
    for p in train_files: (work/'hr'/p.name).symlink_to(p)  # links, not copies

    crap = get_crappifier('em', scale=4)
    hr = [normalize_percentile(read_image(p)[0]) for p in test_files]
    lr = [crap(h, rng=1000 + i).astype(np.float32) for i, h in enumerate(hr)]
    mname, metric = metrics_fn()
    def score(preds):
        vals = np.array([metric(p, t) for p, t in zip(preds, hr)])
        return {'psnr': float(vals[:, 0].mean()), 'ssim': float(vals[:, 1].mean()),
                'per_image': [{'psnr': float(v[0]), 'ssim': float(v[1])} for v in vals]}

    results = {'data': str(shared/'em'/'isbi2012_sstem'), 'train_files': [p.name for p in train_files],
               'test_files': [p.name for p in test_files], 'metric': mname, 'scale': 4, 'size': a.size, 'lr': a.lr,
               'epochs': a.epochs, 'arch': a.arch, 'tiles_per_image': a.tiles, 'bs': a.bs, 'threads': a.threads,
               'versions': library_versions(), 'bilinear': score([bilinear(l, 4) for l in lr]), 'models': {}}
    print('bilinear', {k: v for k, v in results['bilinear'].items() if k != 'per_image'}, flush=True)
    lr_tile = a.size // 4  # the LR crop size the models are trained on
    prev = {m: results_prev(a.out, m, 'train_seconds') for m in a.modes}  # before this run overwrites the file
    for mode in a.modes:
        if a.eval_only:
            from pssr.learner import load_model
            model, rec = load_model(Path(a.eval_only)/f'em_compare_{mode}')
            results['models'][mode] = {**evaluate_model(model, lr, score, lr_tile), 'history': rec.history,
                                       'train_seconds': prev[mode]}
            print(mode, summary(results['models'][mode]), flush=True)
            write(results, a.out)
            continue
        cfg = TrainConfig(name=f'em_compare_{mode}', hr=str(work/'hr'), crappifier='em', scale=4, size=a.size, bs=a.bs,
                          epochs=a.epochs, lr=a.lr, arch=a.arch, mode=mode, valid_pct=0.1, tiles_per_image=a.tiles,
                          seed=0, models_dir=str(work/'models'))
        t0 = time.time()
        learn = train(cfg)
        t_train = time.time() - t0
        results['models'][mode] = {**evaluate_model(learn.model, lr, score, lr_tile), 'train_seconds': round(t_train, 1),
                                   'models_dir': cfg.models_dir, 'history': learn.pssr_history}
        print(mode, summary(results['models'][mode]), flush=True)
        write(results, a.out)  # partial results survive a later crash
    print('wrote', a.out)


def summary(r: dict) -> dict:
    return {k: ({kk: vv for kk, vv in v.items() if kk != 'per_image'} if isinstance(v, dict) else v)
            for k, v in r.items() if k != 'history'}


def write(results: dict, path):
    out = Path(path); out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, 'w') as f: json.dump(results, f, indent=2)


def results_prev(path, mode, key):
    "A value from an earlier run's results file (e.g. training time), if any."
    try: return json.loads(Path(path).read_text())['models'][mode][key]
    except Exception: return None


if __name__ == '__main__': main()
