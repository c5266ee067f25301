"""How much resident memory one forward pass of the default model peaks at, pass after identical pass (issue 13).

Each pass's own peak is read by resetting the process's high-water mark first (`/proc/self/clear_refs` = 5, Linux
>= 4.0) and reading `VmHWM` after it. The same tile, the same weights, the same input: any spread is the allocator's
(glibc's heap and its dynamic mmap threshold), not the work. A restore that runs more passes meets a higher maximum
of that spread, so a 16384² output's peak is not expected below a 1024² one's even when both need the same.

    .venv/bin/python bench/pass_peaks.py MODEL.pth [--tiles 144 132] [--passes 100] [--threads 2]

(`bench/predict_speed.py`'s `make_model` makes the default model.) Linux only; not a test: memory only, any load.
"""
import argparse, sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from predict_speed import status_mb  # one reader of /proc/self/status


def pass_peaks(model:Path, tile:int, passes:int) -> np.ndarray:
    "Peak resident memory (MB) of each of `passes` forward passes of one random `tile`² tile, trimming the heap every 9 as a row of tiles does."
    import pssr.predict as pp
    net = pp.as_model(model, 'cpu')
    fn, x = pp.model_fn(net, False), np.random.default_rng(0).random((1, net.n_frames, tile, tile), dtype=np.float32)
    peaks = []
    for i in range(passes):
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')  # the high-water mark restarts from the current RSS
        fn(x); peaks.append(status_mb('VmHWM'))
        if i % 9 == 8: pp.trim_heap()
    return np.array(peaks)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('model', type=Path)
    p.add_argument('--tiles', type=int, nargs='+', default=[144, 132], help='tile sides (LR px): 144 for a 1024² output, 132 in the blocks of a large one')
    p.add_argument('--passes', type=int, default=100)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    for t in a.tiles:
        r = pass_peaks(a.model, t, a.passes)
        print(f'tile {t}: {a.passes} passes, peak RSS per pass min {r.min():.0f} / median {np.median(r):.0f} / max {r.max():.0f} MB '
              f'(max of the first 4 passes, as many as a 1024² output runs: {r[:4].max():.0f} MB)')


if __name__ == '__main__':
    main()
