"""Restoration quality against CPU training time: which model and recipe should be the default.

Each candidate trains for a fixed wall-clock budget (`TrainConfig.minutes`) on the ssTEM slices of
../shared/data/em/isbi2012_sstem with the last `--holdout` (5) slices held out. It then restores the held-out
ssTEM slices and the FIB-SEM slices of ../shared/data/em/epfl_fibsem (another microscope and tissue, never
trained on), crappified with PSSR's EM crappifier (x4, seeded), and scores them with `pssr.evaluate`
(PSNR/SSIM after percentile normalisation and an affine fit) against bilinear upscaling of the same LR.

    .venv/bin/python bench/quality_budget.py --minutes 5            # stage 1 (encoders, crop sizes) + stage 2 (losses, lr)
    .venv/bin/python bench/quality_budget.py --cli 20               # the defaults, driven only by the command line
    .venv/bin/python bench/quality_budget.py --minutes 20 --only pssr-resnet34
    .venv/bin/python bench/quality_budget.py --report               # table + plot from the saved results

`--cli M` runs exactly what a user types: `pssr train --hr DIR --crappifier em --scale 4 --minutes M --name NAME`,
then `pssr predict MODEL LR_IMAGES... -o OUT` with no tiling options, and scores the files it wrote.
Results accumulate in bench/results/quality_budget.json (one row per candidate and budget, the newest kept) and
bench/results/quality_budget.png. The budget is wall-clock time: run it on an otherwise idle machine (the load
average is recorded with every row). Not a test: it needs the shared data and takes minutes per candidate.
"""
import argparse, contextlib, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pssr.io import atomic_write, list_images, read_image, shared_data_dir, write_tiff
from pssr.crappify import get_crappifier
from pssr.evaluate import evaluate_image, _synthetic_items

RESULTS = ROOT / 'bench' / 'results' / 'quality_budget.json'
BASE = dict(crappifier='em', scale=4)

# Stage 1: encoders and LR crop sizes (size = HR crop; LR crop = size // 4).
STAGE1 = {
    'pssr-resnet34':        dict(arch='resnet34', mode='lr', size=128, bs=8, lr=1e-3, loss='mse'),  # the previous default
    'unet_small-64':        dict(arch='unet_small', size=256, bs=8, lr=1e-3, loss='mse'),          # the previous demo's model
    'lr_resnet-32':         dict(arch='lr_resnet', size=128, bs=8, lr=1e-3, loss='mse'),
    'lr_resnet-64':         dict(arch='lr_resnet', size=256, bs=8, lr=1e-3, loss='mse'),
    'lr_resnet-96':         dict(arch='lr_resnet', size=384, bs=8, lr=1e-3, loss='mse'),
}
# Stage 2: variations of stage 1's best (name suffix -> overrides).
STAGE2 = {'l1': dict(loss='l1'), 'msssim_l1': dict(loss='msssim_l1'), 'lr4e-3': dict(lr=4e-3), 'bs16': dict(bs=16)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--minutes', type=float, default=5, help='training budget per candidate (wall clock)')
    p.add_argument('--only', nargs='*', help='run only these stage-1 candidates (no stage 2)')
    p.add_argument('--cli', type=float, metavar='MINUTES', help='run the defaults through the command line instead')
    p.add_argument('--report', action='store_true', help='only print the table and redraw the plot')
    p.add_argument('--holdout', type=int, default=5, help='last ssTEM slices held out of training')
    p.add_argument('--data', type=Path, default=None, help='folder holding em/isbi2012_sstem and em/epfl_fibsem')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', type=Path, default=RESULTS)
    p.add_argument('--keep', type=Path, metavar='DIR', help='work in DIR and keep its models and outputs (default: a temporary folder)')
    return p.parse_args(argv)


def datasets(data: Path, holdout: int, workdir: Path):
    "A folder of training slices (links, never copies) and the held-out test sets `{name: [paths]}`."
    sstem = list_images(data / 'em' / 'isbi2012_sstem')
    train_dir = workdir / 'train'
    train_dir.mkdir(parents=True, exist_ok=True)
    for p in sstem[:-holdout]: (train_dir / p.name).symlink_to(p.resolve())
    return train_dir, {'sstem': sstem[-holdout:], 'fibsem': list_images(data / 'em' / 'epfl_fibsem')}


def lr_gt_pairs(paths, seed: int):
    "(name, LR, GT) per image, made as `pssr evaluate --crappifier em` makes them (normalised GT, seeded EM crappifier x4)."
    return [(name, lr, gt) for name, lr, gt, _, _ in _synthetic_items(paths, get_crappifier('em', 4), seed)]


def score(pairs, predict) -> dict:
    "Mean PSNR/SSIM of the model and of bilinear over `pairs`, with pssr.evaluate."
    rows = []
    for name, lr, gt in pairs:
        t = evaluate_image(lr, gt, 4, lambda x, name=name: predict(name, x), name=name).table.set_index('method')
        rows.append([t.psnr['model'], t.psnr['bilinear'], t.ssim['model'], t.ssim['bilinear']])
    m = np.mean(rows, 0)
    return {'psnr': m[0], 'psnr_bilinear': m[1], 'dpsnr': m[0] - m[1], 'ssim': m[2], 'ssim_bilinear': m[3],
            'dssim': m[2] - m[3], 'n': len(rows), 'dpsnr_per_image': [r[0] - r[1] for r in rows]}


def quiet_fastai():
    "No fastai progress bars in benchmark logs."
    from fastcore.basics import defaults
    from fastai.callback.progress import ProgressCallback
    defaults.callbacks = [c for c in defaults.callbacks if c is not ProgressCallback]


def run_api(name: str, overrides: dict, minutes: float, train_dir: Path, tests: dict, workdir: Path, seed: int) -> dict:
    "Train one candidate through the Python API for `minutes`, then score it on every test set."
    from pssr.learner import TrainConfig, train
    from pssr.predict import restore
    cfg = TrainConfig(name=name, hr=str(train_dir), models_dir=str(workdir / 'models'), minutes=minutes, seed=seed,
                      **{**BASE, **overrides})
    t0 = time.perf_counter()
    learn = train(cfg)
    wall = time.perf_counter() - t0
    model = learn.model.eval()
    rec = json.loads((workdir / 'models' / f'{name}.json').read_text())
    res = {k: score(pairs, lambda _, x: restore(model, x, progress=False)) for k, pairs in tests.items()}
    return row(name, 'api', minutes, wall, {**rec['config'], **rec['model']}, rec, res)


def run_cli(minutes: float, train_dir: Path, tests: dict, workdir: Path) -> dict:
    "The defaults, through `pssr train` and `pssr predict` only; score the written files."
    pssr = str(Path(sys.executable).parent / 'pssr')
    name, models = 'cli_default', workdir / 'models'
    cmd = [pssr, 'train', '--hr', str(train_dir), '--crappifier', 'em', '--scale', '4', '--minutes', f'{minutes:g}',
           '--name', name, '--models-dir', str(models)]
    t0 = time.perf_counter()
    with open(workdir / 'train.log', 'w') as log: subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    res = {}
    for k, pairs in tests.items():
        lr_dir, out_dir = workdir / f'lr_{k}', workdir / f'out_{k}'
        lr_dir.mkdir()
        paths = [write_tiff(lr_dir / f'{n}.tif', lr) for n, lr, _ in pairs]
        subprocess.run([pssr, 'predict', str(models / f'{name}.pth'), *map(str, paths), '-o', str(out_dir)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        res[k] = score(pairs, lambda n, _: read_image(out_dir / f'{n}_pssr.tif')[0])
    rec = json.loads((models / f'{name}.json').read_text())
    return row('default (CLI)', 'cli', minutes, wall, {**rec['config'], **rec['model']}, rec, res)


def row(name, how, minutes, wall, cfg, rec, res) -> dict:
    sched = rec.get('schedule') or {}
    return {'candidate': name, 'how': how, 'minutes': minutes, 'wall_min': round(wall / 60, 2),
            'config': {k: cfg.get(k) for k in ('arch', 'mode', 'size', 'bs', 'lr', 'loss')},
            'epochs': sched.get('epochs'), 'steps': sched.get('total_steps'), 'step_s': sched.get('step_s'),
            'best_epoch': (rec.get('metrics') or {}).get('epoch'), 'load_avg': os.getloadavg()[0], **{
                f'{k}_{m}': (round(v, 4) if isinstance(v, float) else v) for k, r in res.items() for m, v in r.items()}}


def load(out: Path) -> list:
    return json.loads(out.read_text())['rows'] if out.is_file() else []


def save(rows: list, out: Path):
    "Write the rows (newest per candidate, how and budget), the machine and a plot."
    keep = {}
    for r in rows: keep[(r['candidate'], r['how'], r['minutes'])] = r
    rows = list(keep.values())
    rec = {'benchmark': 'quality_budget', 'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(),
           'platform': platform.platform()}, 'train': 'isbi2012_sstem minus held-out slices',
           'tests': {'sstem': 'held-out isbi2012_sstem slices', 'fibsem': 'all epfl_fibsem slices (never trained on)'},
           'degradation': "PSSR's EM crappifier x4 (seeded)", 'rows': rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, 'w') as f: json.dump(rec, f, indent=1)
    plot(rows, out.with_suffix('.png'))
    return rows


def table(rows: list) -> str:
    "Markdown table, best first within each budget."
    lines = ['| candidate | budget (min) | wall (min) | steps | ssTEM ΔPSNR dB | ssTEM ΔSSIM | FIB-SEM ΔPSNR dB | FIB-SEM ΔSSIM |',
             '|---|---|---|---|---|---|---|---|']
    for r in sorted(rows, key=lambda r: (r['minutes'], -(r['sstem_dpsnr'] + r['fibsem_dpsnr']))):
        lines.append(f"| {r['candidate']} | {r['minutes']:g} | {r['wall_min']:.1f} | {r['steps']} | {r['sstem_dpsnr']:+.2f} | "
                     f"{r['sstem_dssim']:+.3f} | {r['fibsem_dpsnr']:+.2f} | {r['fibsem_dssim']:+.3f} |")
    return '\n'.join(lines)


def plot(rows: list, path: Path):
    "ΔPSNR over bilinear against training minutes, one line per candidate, for each test set."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    groups = {}  # one line per recipe: the CLI run of the defaults joins the candidate with the same recipe
    for r in rows: groups.setdefault(json.dumps(r['config'], sort_keys=True), []).append(r)
    for ax, k, title in zip(axs, ('sstem', 'fibsem'), ('held-out ssTEM', 'FIB-SEM (never trained on)')):
        for rs in sorted(groups.values(), key=lambda g: g[0]['candidate']):
            rs = sorted(rs, key=lambda r: r['minutes'])
            label = ' = '.join(dict.fromkeys(r['candidate'] for r in rs))
            ax.plot([r['minutes'] for r in rs], [r[f'{k}_dpsnr'] for r in rs], 'o-', label=label)
        ax.axhline(0, color='k', lw=0.8); ax.axhline(1, color='grey', lw=0.8, ls='--')
        ax.set(title=title, xlabel='training budget (min, 2 CPU threads)')
    axs[0].set_ylabel('PSNR gain over bilinear (dB)')
    axs[1].legend(fontsize=7, loc='best')
    fig.tight_layout()
    with atomic_write(path, 'wb') as f: fig.savefig(f, format='png', dpi=90)


def main(argv=None):
    a = parse_args(argv)
    rows = load(a.out)
    if a.report:
        print(table(rows)); plot(rows, a.out.with_suffix('.png')); return
    data = a.data or shared_data_dir()
    if data is None or not (Path(data) / 'em' / 'isbi2012_sstem').is_dir():
        sys.exit('quality_budget: the shared EM data (em/isbi2012_sstem, em/epfl_fibsem) was not found; pass --data')
    import torch
    torch.set_num_threads(a.threads)
    quiet_fastai()
    if os.getloadavg()[0] > 0.5:
        print(f'warning: load average {os.getloadavg()[0]:.1f}: other processes compete and budgets buy fewer steps', file=sys.stderr)
    with (contextlib.nullcontext(str(a.keep)) if a.keep else tempfile.TemporaryDirectory(prefix='pssr_quality_')) as tmp:
        workdir = Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        train_dir, test_paths = datasets(Path(data), a.holdout, workdir)
        tests = {k: lr_gt_pairs(v, a.seed) for k, v in test_paths.items()}
        def record(r):
            rows.append(r); save(rows, a.out)
            print(f"{r['candidate']:>22} {r['minutes']:g} min: ssTEM {r['sstem_dpsnr']:+.2f} dB / {r['sstem_dssim']:+.3f}, "
                  f"FIB-SEM {r['fibsem_dpsnr']:+.2f} dB / {r['fibsem_dssim']:+.3f} ({r['steps']} steps, {r['wall_min']:.1f} min)", flush=True)
            return r
        if a.cli:
            record(run_cli(a.cli, train_dir, tests, workdir))
        else:
            stage1 = {k: v for k, v in STAGE1.items() if not a.only or k in a.only}
            done = [record(run_api(k, v, a.minutes, train_dir, tests, workdir, a.seed)) for k, v in stage1.items()]
            if not a.only:
                best = max(done, key=lambda r: r['sstem_dpsnr'] + r['fibsem_dpsnr'])
                for suffix, over in STAGE2.items():
                    record(run_api(f"{best['candidate']}-{suffix}", {**STAGE1[best['candidate']], **over}, a.minutes,
                                   train_dir, tests, workdir, a.seed))
    print(table(rows))


if __name__ == '__main__':
    main()
