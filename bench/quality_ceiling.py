"""How much PSNR gain over bilinear is there to get on EM with PSSR's crappifier? An in-domain ceiling.

`bench/quality_budget.py` trains on ssTEM and tests on held-out ssTEM and on FIB-SEM (never trained on). Every
candidate there lands within a few tenths of a dB of bilinear. This benchmark asks whether that is the recipe's
fault or the degradation's: it trains the default recipe for the SAME number of steps (fixed epochs, so machine
load changes the wall time, not the result) on

  - `sstem`: the ssTEM training slices (all but the last `--holdout`), as quality_budget does;
  - `fibsem`: the first 15 FIB-SEM slices, i.e. *in-domain* for the FIB-SEM test slices (an oracle a user who
    restores FIB-SEM could have);

and scores both on the held-out ssTEM slices and on the last 5 FIB-SEM slices (never trained on by either), with
and without test-time augmentation (8 dihedral views averaged). Same scoring as quality_budget (`pssr.evaluate`,
PSSR's EM crappifier x4, seeded).

    .venv/bin/python bench/quality_ceiling.py            # about 15 minutes on an idle 2-core machine
    .venv/bin/python bench/quality_ceiling.py --report

Results: bench/results/quality_ceiling.json. Not a test: it needs the shared data.
"""
import argparse, json, os, platform, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
from quality_budget import lr_gt_pairs, score, quiet_fastai
from pssr.io import atomic_write, list_images, shared_data_dir

RESULTS = ROOT / 'bench' / 'results' / 'quality_ceiling.json'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=38, help='epochs of ~40 steps (38 = the steps a 5-minute default run gets)')
    p.add_argument('--holdout', type=int, default=5, help='last ssTEM slices held out of training')
    p.add_argument('--fib-train', type=int, default=15, help='first FIB-SEM slices trained on by the in-domain model')
    p.add_argument('--data', type=Path, default=None)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', type=Path, default=RESULTS)
    p.add_argument('--report', action='store_true')
    return p.parse_args(argv)


def link_folder(paths, folder: Path) -> Path:
    "A folder of symlinks to `paths` (training data is never copied)."
    folder.mkdir(parents=True)
    for p in paths: (folder / p.name).symlink_to(p.resolve())
    return folder


def table(rows) -> str:
    lines = ['| trained on | steps | TTA | held-out ssTEM ΔPSNR dB | ΔSSIM | held-out FIB-SEM ΔPSNR dB | ΔSSIM |', '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['trained_on']} | {r['steps']} | {'yes' if r['tta'] else 'no'} | {r['sstem_dpsnr']:+.2f} | "
                     f"{r['sstem_dssim']:+.3f} | {r['fibsem_dpsnr']:+.2f} | {r['fibsem_dssim']:+.3f} |")
    return '\n'.join(lines)


def main(argv=None):
    a = parse_args(argv)
    if a.report:
        print(table(json.loads(a.out.read_text())['rows'])); return
    data = Path(a.data or shared_data_dir() or '')
    if not (data / 'em' / 'isbi2012_sstem').is_dir():
        sys.exit('quality_ceiling: the shared EM data (em/isbi2012_sstem, em/epfl_fibsem) was not found; pass --data')
    import torch
    torch.set_num_threads(a.threads)
    quiet_fastai()
    from pssr.learner import TrainConfig, train
    from pssr.predict import restore
    sstem, fib = list_images(data / 'em' / 'isbi2012_sstem'), list_images(data / 'em' / 'epfl_fibsem')
    tests = {'sstem': lr_gt_pairs(sstem[-a.holdout:], 0), 'fibsem': lr_gt_pairs(fib[a.fib_train:], 0)}
    train_sets = {'ssTEM (other microscope)': sstem[:-a.holdout], 'FIB-SEM (in-domain)': fib[:a.fib_train]}
    rows = []
    with tempfile.TemporaryDirectory(prefix='pssr_ceiling_') as tmp:
        for i, (name, paths) in enumerate(train_sets.items()):
            n_train = len(paths) - max(1, round(len(paths) * 0.2))
            cfg = TrainConfig(name=f'ceiling{i}', hr=str(link_folder(paths, Path(tmp) / f'train{i}')), crappifier='em', scale=4,
                              epochs=a.epochs, tiles_per_image=max(1, round(320 / n_train)), models_dir=str(Path(tmp) / 'models'))
            t0 = time.perf_counter()
            learn = train(cfg)
            wall, model = time.perf_counter() - t0, learn.model.eval()
            steps = len(learn.dls.train) * a.epochs  # fixed epochs: no time-budget schedule in the JSON
            for tta in (False, True):
                predict = (lambda _, x: restore(model, x, progress=False, tta=True)[0]) if tta else \
                          (lambda _, x: restore(model, x, progress=False))
                res = {k: score(pairs, predict) for k, pairs in tests.items()}
                rows.append({'trained_on': name, 'epochs': a.epochs, 'steps': steps, 'tiles_per_image': cfg.tiles_per_image,
                             'tta': tta, 'train_wall_min': round(wall / 60, 2), 'load_avg': os.getloadavg()[0],
                             **{f'{k}_{m}': (round(v, 4) if isinstance(v, float) else v) for k, r in res.items() for m, v in r.items()}})
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    rec = {'benchmark': 'quality_ceiling', 'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(),
           'platform': platform.platform()}, 'recipe': 'TrainConfig defaults, fixed epochs',
           'tests': {'sstem': f'last {a.holdout} isbi2012_sstem slices', 'fibsem': f'epfl_fibsem slices {a.fib_train}+ (never trained on)'},
           'degradation': "PSSR's EM crappifier x4 (seeded)", 'rows': rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(a.out, 'w') as f: json.dump(rec, f, indent=1)
    print(table(rows))


if __name__ == '__main__':
    main()
