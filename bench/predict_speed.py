"""Speed, start-up and peak memory of `pssr predict` with the default model (issue 13).

The model is the default `TrainConfig()` architecture (`lr_resnet`, scale 4, mode 'lr'), seeded, saved with
`pssr.learner.save_model` and loaded from disk by each case like `pssr predict MODEL` does. It is NOT trained:
an untrained `lr_resnet`'s residual branches start at zero, so its measured receptive field is ~2 LR px and the
automatic overlap would be the 8 px minimum. The benchmark therefore passes an EXPLICIT overlap (`--overlap`,
default 16 LR px, the middle of the 8-32 px range trained models get); the tile size is the automatic one
(from the 2 GB default budget). Random weights cost the same arithmetic as trained ones.

Cases (output sides at the default `--divide 1`):
- raw: the network alone, batches of `bs` tiles (tile side as the restores use), output MP/s;
- tif_1024, tif_4096: 256² / 1024² uint16 TIFF inputs through `predict_file` (what `pssr predict` does);
- zarr_16384: a 4096² uint16 OME-Zarr input through the out-of-core path into an OME-Zarr pyramid.
Each case runs in a fresh child process: start-up (process start -> first network batch, including imports,
model loading and planning), end-to-end output MP/s EXCLUDING start-up (first batch -> output written), and the
child's peak RSS from `os.wait4` (the kernel's ru_maxrss of that child, the per-child value of
`getrusage(RUSAGE_CHILDREN)`). The 1-minute load average is recorded before and after each case: on a shared
machine these numbers are distorted, they are results only when run on an idle machine.

    .venv/bin/python bench/predict_speed.py                         # full sizes (long on 2 cores)
    .venv/bin/python bench/predict_speed.py --divide 8 --out /tmp/predict_speed_small.json   # a quick smoke run
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import psutil

CASES = {'tif_1024': ('tif', 256), 'tif_4096': ('tif', 1024), 'zarr_16384': ('zarr', 4096)}  # kind, input side at --divide 1
RESULTS = Path(__file__).parent / 'results' / 'predict_speed.json'


def synthetic_block(shape, seed) -> np.ndarray:
    "Smooth random structure plus noise as uint16 counts."
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.random(shape, dtype=np.float32), 2) * 4000 + rng.normal(0, 50, shape).astype(np.float32)
    return np.clip(x + 500, 0, 65535).astype(np.uint16)


def make_model(folder:Path) -> Path:
    "The default TrainConfig architecture, seeded, saved as `folder/default.pth` (+ .json)."
    import torch
    from pssr.learner import TrainConfig, save_model
    from pssr.models import pssr_unet
    cfg = TrainConfig()
    torch.manual_seed(cfg.seed)
    return save_model(pssr_unet(**{**cfg.model_kwargs(), 'pretrained': False, 'weights': None}), folder / 'default', cfg)


def make_input(kind:str, side:int, folder:Path) -> Path:
    "Write the case's input: a TIFF, or an OME-Zarr filled block by block (never whole in memory)."
    from pssr.io import atomic_dir, write_tiff
    from pssr.predict import create_ome_zarr, iter_blocks
    if kind == 'tif': return write_tiff(folder / f'in_{side}.tif', synthetic_block((side, side), side), pixel_size=0.032)
    path, chunk = folder / f'in_{side}.ome.zarr', min(512, side)
    with atomic_dir(path) as tmp:
        arr = create_ome_zarr(tmp, (side, side), (chunk, chunk), 'YX', [0.032, 0.032], dtype='uint16')
        for i, sl in enumerate(iter_blocks((side, side), chunk)): arr[sl] = synthetic_block((chunk, chunk), i)
    return path


def child_raw(model:Path, overlap:int, bs:int, reps:int=3) -> dict:
    "In the child: output MP/s of the network alone on batches of automatically sized tiles."
    import torch
    from pssr.predict import as_model, model_fn, tiling_defaults
    net = as_model(model, 'cpu')
    tile, _ = tiling_defaults(net, None, overlap, bs)
    fn = model_fn(net)
    x = np.random.default_rng(0).random((bs, net.n_frames, tile, tile), dtype=np.float32)
    fn(x)  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps): fn(x)
    dt = (time.perf_counter() - t0) / reps
    return {'tile': tile, 'bs': bs, 'seconds_per_batch': dt, 'output_mpx_per_s': bs * (tile * net.scale) ** 2 / 1e6 / dt}


def child_restore(model:Path, inp:Path, outdir:Path, overlap:int, bs:int) -> dict:
    "In the child: `predict_file` like `pssr predict`, timing start-up (to the first network batch) and the rest."
    import pssr.predict as pp
    first = {}
    orig = pp.model_fn
    def timed_model_fn(*a, **k):
        fn = orig(*a, **k)
        def wrapped(x):
            first.setdefault('t', time.time())
            return fn(x)
        return wrapped
    pp.model_fn = timed_model_fn  # restore/restore_blocks look it up in the module: marks the first tile batch
    out = pp.predict_file(model, inp, outdir, overlap=overlap, bs=bs, progress=False, device='cpu')
    t_end, t_start = time.time(), psutil.Process().create_time()
    return {'output': str(out), 'startup_s': first['t'] - t_start, 'after_startup_s': t_end - first['t'],
            'total_s': t_end - t_start}


def run_child(args:list, threads:int) -> tuple[dict, float]:
    "Run this script as a child with `args`; its JSON result and its peak RSS (MB, from os.wait4)."
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads)}
    with tempfile.TemporaryFile('w+') as out, tempfile.TemporaryFile('w+') as err:
        proc = subprocess.Popen([sys.executable, __file__, '--threads', str(threads), *args], stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0); err.seek(0)
        if proc.returncode: raise RuntimeError(f'child {args} failed:\n{err.read()[-3000:]}')
        return json.loads(out.read().strip().splitlines()[-1]), ru.ru_maxrss / 1024


def bench_case(name:str, model:Path, folder:Path, divide:int, overlap:int, bs:int, threads:int) -> dict:
    "Prepare the input, restore it in a fresh child, measure, clean up."
    import shutil
    load0 = os.getloadavg()
    if name == 'raw':
        r, rss = run_child(['--raw', str(model), '--overlap', str(overlap), '--bs', str(bs)], threads)
        r.update(case='raw', peak_rss_mb=rss)
    else:
        kind, side = CASES[name]
        side //= divide
        inp, outdir = make_input(kind, side, folder), folder / f'out_{name}'
        r, rss = run_child(['--child', str(model), str(inp), str(outdir), '--overlap', str(overlap), '--bs', str(bs)], threads)
        out_px = (side * 4) ** 2
        r.update(case=name, kind=kind, input_px=f'{side}x{side}', output_px=f'{side * 4}x{side * 4}', peak_rss_mb=rss,
                 output_mpx_per_s_excluding_startup=out_px / 1e6 / r['after_startup_s'],
                 output_mpx_per_s_total=out_px / 1e6 / r['total_s'])
        shutil.rmtree(outdir, ignore_errors=True)
        (inp.unlink() if inp.is_file() else shutil.rmtree(inp))
    r.update(load_avg_start=load0, load_avg_end=os.getloadavg())
    return r


def write_results(rows:list, args, path:Path) -> None:
    "Write all rows with the machine description and settings, atomically."
    import torch
    from pssr.io import atomic_write
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = next((r['output_mpx_per_s'] for r in rows if r['case'] == 'raw'), None)
    for r in rows:
        if raw and 'output_mpx_per_s_excluding_startup' in r: r['fraction_of_raw'] = r['output_mpx_per_s_excluding_startup'] / raw
    doc = {'benchmark': 'pssr predict: raw network speed, end-to-end speed, start-up, peak RSS',
           'model': 'TrainConfig() defaults (lr_resnet, scale 4, mode lr), seeded, UNTRAINED; explicit overlap (see settings)',
           'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(), 'python': platform.python_version(),
                       'torch': torch.__version__, 'total_ram_gb': psutil.virtual_memory().total / 2**30},
           'note': 'load_avg_* = os.getloadavg() (1, 5, 15 min) around each case; on a shared machine (load above the '
                   'core count) these timings are distorted and are not results',
           'settings': {'divide': args.divide, 'overlap': args.overlap, 'bs': args.bs, 'threads': args.threads,
                        'tile': 'auto (2 GB default budget)'},
           'cases': rows}
    with atomic_write(path, 'w') as f: json.dump(doc, f, indent=2)


def print_row(r:dict) -> None:
    load = f"load {r['load_avg_start'][0]:.1f}-{r['load_avg_end'][0]:.1f}"
    if r['case'] == 'raw':
        print(f"raw network: tile {r['tile']}, {r['output_mpx_per_s']:.3f} output MP/s, peak RSS {r['peak_rss_mb']:.0f} MB ({load})")
    else:
        print(f"{r['case']:<11} {r['input_px']:>10} -> {r['output_px']:>12}: start-up {r['startup_s']:.1f} s, "
              f"{r['output_mpx_per_s_excluding_startup']:.3f} MP/s after start-up, peak RSS {r['peak_rss_mb']:.0f} MB ({load})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cases', nargs='+', default=['raw', *CASES], choices=['raw', *CASES])
    p.add_argument('--divide', type=int, default=1, help='divide every input side by this (e.g. 8 for a quick run)')
    p.add_argument('--overlap', type=int, default=16, help='tile overlap in LR px (explicit: the model is untrained)')
    p.add_argument('--bs', type=int, default=4)
    p.add_argument('--threads', type=int, default=1, help='torch threads in the child (default 1)')
    p.add_argument('--out', type=Path, default=RESULTS, help=f'JSON results (default {RESULTS})')
    p.add_argument('--raw', metavar='MODEL', help=argparse.SUPPRESS)
    p.add_argument('--child', nargs=3, metavar=('MODEL', 'INPUT', 'OUTDIR'), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.raw or args.child:
        import torch
        torch.set_num_threads(args.threads)
        r = child_raw(Path(args.raw), args.overlap, args.bs) if args.raw else \
            child_restore(*map(Path, args.child), args.overlap, args.bs)
        print(json.dumps(r))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix='pssr_bench_') as d:
        model = make_model(Path(d))
        for name in args.cases:
            print(f'running {name} ...', flush=True)
            rows.append(bench_case(name, model, Path(d), args.divide, args.overlap, args.bs, args.threads))
            write_results(rows, args, args.out)  # keep what is done if a later case is interrupted
            print_row(rows[-1])
    print(f'\nwrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
