"""Speed and peak memory of `pssr.predict` on this machine.

Restores synthetic 16-bit images with a randomly initialised resnet34 PSSR U-Net (mode 'lr', scale 4; random weights
cost the same as trained ones): TIFF inputs of 256² and 1024² px (outputs 1024², 4096²) through `predict_file`, and
OME-Zarr inputs of 2048² and 4096² px (outputs 8192², 16384²) through the out-of-core `predict_zarr`.
Each case runs in a fresh subprocess; its peak resident memory is the kernel's high-water mark (ru_maxrss) and is
cross-checked by sampling the child's RSS with psutil. Writes bench/results/predict_speed.json atomically.

    .venv/bin/python bench/predict_speed.py            # all cases (long: tens of minutes on 2 busy cores)
    .venv/bin/python bench/predict_speed.py --cases tif_1024 zarr_8192
"""
import argparse, json, os, platform, resource, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path

import numpy as np
import psutil

SCALE, ARCH = 4, 'resnet34'
CASES = {'tif_1024': ('tif', 256), 'tif_4096': ('tif', 1024), 'zarr_8192': ('zarr', 2048), 'zarr_16384': ('zarr', 4096)}
RESULTS = Path(__file__).parent / 'results' / 'predict_speed.json'


def synthetic_block(shape, seed) -> np.ndarray:
    "Smooth random structure plus noise as uint16 counts."
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.random(shape, dtype=np.float32), 2) * 4000 + rng.normal(0, 50, shape).astype(np.float32)
    return np.clip(x + 500, 0, 65535).astype(np.uint16)


def make_input(kind:str, side:int, folder:Path) -> Path:
    "Write the case's input: an ImageJ TIFF, or an OME-Zarr filled block by block (never whole in memory)."
    from pssr.io import write_tiff
    from pssr.predict import atomic_dir, create_ome_zarr, iter_blocks
    if kind == 'tif': return write_tiff(folder / f'in_{side}.tif', synthetic_block((side, side), side), pixel_size=0.032)
    path, chunk = folder / f'in_{side}.ome.zarr', 512
    with atomic_dir(path) as tmp:
        arr = create_ome_zarr(tmp, (side, side), (chunk, chunk), 'YX', [0.032, 0.032], dtype='uint16')
        for i, sl in enumerate(iter_blocks((side, side), chunk)): arr[sl] = synthetic_block((chunk, chunk), i)
    return path


def run_case(inp:Path, outdir:Path, tile, bs:int, threads:int) -> dict:
    "In the child: build the model, restore `inp`, report time and memory."
    import torch
    torch.set_num_threads(threads)
    from pssr.models import pssr_unet
    from pssr.predict import predict_file, tiling_defaults
    torch.manual_seed(0)
    net = pssr_unet(ARCH, scale=SCALE, mode='lr').eval()
    tile_used, overlap = tiling_defaults(net, tile, None, bs)
    rss_before = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    out = predict_file(net, inp, outdir, tile=tile_used, overlap=overlap, bs=bs, progress=False)
    dt = time.perf_counter() - t0
    return {'seconds': dt, 'output': str(out), 'tile': tile_used, 'overlap': overlap, 'bs': bs, 'threads': threads,
            'rss_before_predict_mb': rss_before / 2**20, 'ru_maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def sample_peak_rss(proc:subprocess.Popen, every:float=0.05) -> dict:
    "Sample `proc`'s RSS until it exits (in a thread); returns a dict filled with 'peak_mb'."
    res = {'peak_mb': 0.0}
    def loop():
        try:
            p = psutil.Process(proc.pid)
            while proc.poll() is None:
                res['peak_mb'] = max(res['peak_mb'], p.memory_info().rss / 2**20)
                time.sleep(every)
        except psutil.NoSuchProcess: pass
    t = threading.Thread(target=loop, daemon=True); t.start()
    res['thread'] = t
    return res


def bench_case(name:str, folder:Path, tile, bs:int, threads:int) -> dict:
    "Prepare the input, run the case in a fresh subprocess, measure it, remove the output."
    kind, side = CASES[name]
    inp = make_input(kind, side, folder)
    outdir = folder / f'out_{name}'
    cmd = [sys.executable, __file__, '--child', str(inp), str(outdir), '--bs', str(bs), '--threads', str(threads)]
    if tile: cmd += ['--tile', str(tile)]
    load0 = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = sample_peak_rss(proc)
    out, err = proc.communicate()
    sampler['thread'].join()
    if proc.returncode: raise RuntimeError(f'{name} failed:\n{err[-2000:]}')
    r = json.loads(out.strip().splitlines()[-1])
    out_px = (side * SCALE) ** 2
    r.update(case=name, kind=kind, input_px=f'{side}x{side}', output_px=f'{side * SCALE}x{side * SCALE}',
             output_mpx_per_s=out_px / 1e6 / r['seconds'], sampled_peak_rss_mb=sampler['peak_mb'],
             load_avg_1min_start=load0, load_avg_1min_end=os.getloadavg()[0])
    shutil.rmtree(outdir, ignore_errors=True)
    (inp.unlink() if inp.is_file() else shutil.rmtree(inp))
    return r


def write_results(rows:list, args) -> None:
    "Write all rows with the machine description, atomically."
    import torch
    from pssr.io import atomic_write
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = {'benchmark': 'pssr.predict speed and peak memory', 'model': f'pssr_unet({ARCH!r}, scale={SCALE}, mode="lr"), random weights',
           'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(), 'python': platform.python_version(),
                       'torch': torch.__version__, 'total_ram_gb': psutil.virtual_memory().total / 2**30},
           'note': 'CPU shared with other jobs: see load_avg_1min_* (2 cores => load > 2 means contention)',
           'settings': {'tile': args.tile or 'auto', 'bs': args.bs, 'threads': args.threads}, 'cases': rows}
    with atomic_write(RESULTS, 'w') as f: json.dump(doc, f, indent=2)


def print_table(rows:list) -> None:
    print(f"\n{'case':<11} {'input':>10} {'output':>12} {'tile':>5} {'seconds':>8} {'out Mpx/s':>9} {'peak RSS MB':>11} {'(sampled)':>9} {'load':>9}")
    for r in rows:
        print(f"{r['case']:<11} {r['input_px']:>10} {r['output_px']:>12} {r['tile']:>5} {r['seconds']:>8.1f} {r['output_mpx_per_s']:>9.3f} "
              f"{r['ru_maxrss_mb']:>11.0f} {r['sampled_peak_rss_mb']:>9.0f} {r['load_avg_1min_start']:>4.1f}-{r['load_avg_1min_end']:.1f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cases', nargs='+', default=list(CASES), choices=list(CASES))
    p.add_argument('--tile', type=int, default=None, help='tile side (default: chosen from free memory)')
    p.add_argument('--bs', type=int, default=4)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--child', nargs=2, metavar=('INPUT', 'OUTDIR'), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(Path(args.child[0]), Path(args.child[1]), args.tile, args.bs, args.threads)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix='pssr_bench_') as d:
        for name in args.cases:
            print(f'running {name} ...', flush=True)
            rows.append(bench_case(name, Path(d), args.tile, args.bs, args.threads))
            write_results(rows, args)   # keep what is done if a later case is interrupted
            print_table(rows[-1:])
    print_table(rows)
    print(f'\nwrote {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
