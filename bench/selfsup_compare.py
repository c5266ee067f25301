"""Self-supervised against supervised denoising at equal budget: synthetic time-lapses (TiS) and volumes (SiS).

For each set (`time`: moving, bending filaments from `pssr.data.synthetic_timelapse`; `space`: tilted filaments and
spheres from `pssr.selfsup.synthetic_volume`), 3 noisy training stacks and 1 held-out stack (Poisson, 20 photons at
full scale, + Gaussian read noise 0.02), `pssr.selfsup.compare_training` trains the same network for the SAME
number of optimiser steps (fixed epochs x steps per epoch: load changes the wall time, not the result):

  - supervised: clean targets, fresh noise every step (PSSR's recipe);
  - TiS/SiS without the amending constraint, with it, with it + FNSM started at the OTF cut-off of the known optics
    (`pssr.selfsup.SYNTHETIC_OPTICS`: the objective whose PSF the phantoms' Gaussian blur approximates, given as a user
    would: pixel size in the TIFFs, `na`/`wavelength` in the config), and with it + FNSM started at half Nyquist
    (optics unknown);
  - the multi-frame variant (frames t-2..t+2 without t -> frame t);

and scores PSNR/SSIM of the held-out stack against its ground truth.

    .venv/bin/python bench/selfsup_compare.py --mode time     # ~20 min on the loaded shared 2-core machine
    .venv/bin/python bench/selfsup_compare.py --mode space --runs supervised 'SiS,'   # a share of the runs (merged into the JSON)
    .venv/bin/python bench/selfsup_compare.py --mode space --seeds 1 2 --runs 'SiS + amending'   # more seeds (the table: their mean)
    .venv/bin/python bench/selfsup_compare.py --report

Results: bench/results/selfsup_compare.json (one section per mode; machine and load recorded with each).
bench/results/selfsup_compare_sharpened_unknown.json is the same benchmark from before the FNSM without known optics
stayed soft (commit 90ebf26: its mask was sharpened to steepness 100 like the one with known optics, and lost 0.25 dB on
the time-lapse).
"""
import argparse, fcntl, json, os, platform, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pssr.io import atomic_write

RESULTS = ROOT / 'bench' / 'results' / 'selfsup_compare.json'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--mode', choices=('time', 'space'), default='time')
    p.add_argument('--epochs', type=int, default=5, help='one-cycle length')
    p.add_argument('--steps', type=int, default=80, help='optimiser steps per epoch (batches of --bs tiles)')
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--bs', type=int, default=8)
    p.add_argument('--arch', default='unet_small')
    p.add_argument('--stacks', type=int, default=4, help='stacks generated; the last is held out for testing')
    p.add_argument('--frames', type=int, default=16)
    p.add_argument('--side', type=int, default=128)
    p.add_argument('--seeds', type=int, nargs='+', default=[0], help='seeds of noise, crops and weights (one model per run and seed; the table holds the mean)')
    p.add_argument('--runs', nargs='*', default=None, help="only these runs (name prefixes, e.g. supervised 'TiS +'): several processes share the work")
    p.add_argument('--workdir', type=Path, default=Path.home() / '.cache' / 'pssr-bench', help='temporary files go below it')
    p.add_argument('--out', type=Path, default=RESULTS)
    p.add_argument('--report', action='store_true')
    return p.parse_args(argv)


def cpu_name() -> str:
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor()


def mean_table(by_seed: dict) -> dict:
    "Each row's mean over the seeds that ran it, with `n_seeds` and the PSNR's standard deviation over seeds (`psnr_sd`)."
    import numpy as np
    rows = {}
    for t in by_seed.values():
        for name, row in t['table'].items(): rows.setdefault(name, []).append(row)
    mean = lambda v: None if not (v := [x for x in v if x is not None]) else round(float(np.mean(v)), 4)
    return {name: {**{c: mean([r.get(c) for r in rs]) for c in rs[0]}, 'n_seeds': len(rs),
                   'psnr_sd': round(float(np.std([r['psnr'] for r in rs])), 4) if len(rs) > 1 else None} for name, rs in rows.items()}


def save_section(out: Path, mode: str, section: dict):
    "Merge this process's rows into the mode's section of the JSON (several processes may run at once: a lock serialises the writes)."
    with open(out.with_suffix('.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(out.read_text()) if out.exists() else {}
        old = data.get(mode) if (data.get(mode) or {}).get('settings') == section['settings'] else None
        if old:  # same settings: keep the other processes' rows (a section from before seeds were recorded is seed 0)
            old_seeds = old.get('by_seed') or {'0': dict(table=old['table'], valid_loss=old['valid_loss'])}
            for seed, t in old_seeds.items():
                new = section['by_seed'].setdefault(seed, dict(table={}, valid_loss={}))
                for k in ('table', 'valid_loss'): new[k] = {**t[k], **new[k]}
            section['processes'] = old.get('processes', []) + section['processes']
        section['by_seed'] = dict(sorted(section['by_seed'].items(), key=lambda kv: int(kv[0])))
        section['table'] = mean_table(section['by_seed'])
        section['valid_loss'] = section['by_seed'][min(section['by_seed'], key=int)]['valid_loss']  # the first seed's, per epoch
        data[mode] = section
        with atomic_write(out, 'w') as f: json.dump(data, f, indent=1)


def report(out: Path):
    import pandas as pd
    for mode, sec in json.loads(out.read_text()).items():
        print(f"\n== {mode}: {sec['settings']}\n   {sec['machine']}")
        for p in sec['processes']: print(f"   {p['date']}: {p['runs']}: load {p['load_start']} -> {p['load_end']}, {p['wall_min']} min wall")
        print(pd.DataFrame(sec['table']).T.round(3).to_string())
        for seed, t in sec.get('by_seed', {}).items(): print(f'   seed {seed}:', {k: v['psnr'] for k, v in t['table'].items()})


def main(argv=None):
    a = parse_args(argv)
    if a.report: return report(a.out)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    import torch
    torch.set_num_threads(1)
    from pssr.data import synthetic_timelapse
    from pssr.selfsup import SYNTHETIC_OPTICS, compare_training, synthetic_volume
    make = synthetic_timelapse if a.mode == 'time' else synthetic_volume
    clean = [make(a.frames, a.side, seed=s) for s in range(a.stacks)]
    from pssr.selfsup import runs_for
    names = ['supervised (clean targets)', *runs_for(a.mode)]
    pick = lambda name: a.runs is None or any(name == r if r in names else name.startswith(r) for r in a.runs)  # a full name: that run only
    runs = {k: v for k, v in runs_for(a.mode).items() if pick(k)}
    load0, t0 = os.getloadavg(), time.perf_counter()
    a.workdir.mkdir(parents=True, exist_ok=True)
    tables = {}
    for seed in a.seeds:
        with tempfile.TemporaryDirectory(dir=a.workdir) as d:
            tables[str(seed)] = compare_training(clean, d, a.mode, epochs=a.epochs, steps=a.steps, size=a.size, bs=a.bs, arch=a.arch,
                                                 tiles_per_image=8, runs=runs, supervised=pick('supervised'), optics=SYNTHETIC_OPTICS, seed=seed)
    as_dict = lambda table: {k: {c: (None if v != v else round(float(v), 4)) for c, v in row.items()} for k, row in table.T.to_dict().items()}
    section = dict(settings=dict(mode=a.mode, epochs=a.epochs, steps_per_epoch=a.steps, bs=a.bs, size=a.size, arch=a.arch,
                                 stacks=a.stacks, frames=a.frames, side=a.side, photons=20.0, read_noise=0.02, torch_threads=1,
                                 optics=SYNTHETIC_OPTICS),
                   machine=f'{cpu_name()}, {os.cpu_count()} cores (shared with other jobs)',
                   processes=[dict(runs=list(tables[str(a.seeds[0])].index[1:]), seeds=a.seeds, load_start=[round(x, 2) for x in load0], load_end=[round(x, 2) for x in os.getloadavg()],
                                   wall_min=round((time.perf_counter() - t0) / 60, 1), date=time.strftime('%Y-%m-%d %H:%M'))],
                   by_seed={s: dict(table=as_dict(t), valid_loss=t.attrs['valid_loss']) for s, t in tables.items()})
    save_section(a.out, a.mode, section)
    report(a.out)


if __name__ == '__main__':
    main()
