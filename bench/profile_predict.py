"""cProfile of `pssr.predict.restore` on a 1024² input with the default model: what fraction is the network?

The model is the default `TrainConfig()` architecture (`lr_resnet`, scale 4), seeded and untrained, restored with
an explicit overlap (`--overlap`, default 16 LR px: an untrained `lr_resnet` measures a ~2 px receptive field, a
trained one more) and the automatic tile size. "Network" is the cumulative time of the forward passes (the batch
function's `run` inside `model_fn`); everything else (normalisation, padding, tiling, blending, copies) is overhead.
Prints the top functions by own time outside the network and writes a JSON summary. The machine's load average is
recorded: on a shared machine only the fractions, not the seconds, mean something.

    OMP_NUM_THREADS=1 .venv/bin/python bench/profile_predict.py [--side 1024] [--out bench/results/profile_predict.json]
"""
import argparse, cProfile, io, json, os, pstats, sys, time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / 'results' / 'profile_predict.json'


def default_model():
    "The default TrainConfig architecture, seeded."
    import torch
    from pssr.learner import TrainConfig
    from pssr.models import pssr_unet
    cfg = TrainConfig()
    torch.manual_seed(cfg.seed)
    return pssr_unet(**{**cfg.model_kwargs(), 'pretrained': False, 'weights': None}).eval()


def network_seconds(stats:pstats.Stats) -> float:
    "Cumulative seconds of `model_fn`'s inner `run` (the forward passes)."
    return sum(v[3] for (f, _, name), v in stats.stats.items() if f.endswith('predict.py') and name == 'run')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--side', type=int, default=1024, help='input side (LR px)')
    p.add_argument('--overlap', type=int, default=16)
    p.add_argument('--bs', type=int, default=None, help='tiles per batch (default: automatic)')
    p.add_argument('--top', type=int, default=15)
    p.add_argument('--out', type=Path, default=RESULTS)
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from pssr.io import atomic_write
    from pssr.predict import restore, tiling_defaults
    net = default_model()
    x = (np.random.default_rng(0).random((args.side, args.side)) * 4000).astype(np.uint16)
    tile, overlap, bs = tiling_defaults(net, None, args.overlap, args.bs, size=args.side)
    restore(net, x[:64, :64], tile=64, overlap=8, progress=False)  # warm-up outside the profile
    load0, prof = os.getloadavg(), cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(restore, net, x, tile=tile, overlap=overlap, bs=bs, progress=False)
    wall = time.perf_counter() - t0
    st = pstats.Stats(prof)
    total = sum(v[2] for v in st.stats.values())  # own times: the profiled total
    netw = network_seconds(st)
    rows = sorted(((v[2], f'{Path(f).name}:{line}({name})') for (f, line, name), v in st.stats.items()), reverse=True)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats('tottime').print_stats(args.top)
    print(buf.getvalue())
    doc = {'benchmark': 'cProfile of pssr.predict.restore', 'model': 'TrainConfig() defaults (lr_resnet x4), seeded, untrained',
           'input': f'{args.side}x{args.side} uint16', 'tile': tile, 'overlap': overlap, 'bs': bs, 'threads': 1,
           'wall_s': wall, 'profiled_s': total, 'network_s': netw, 'network_fraction': netw / total,
           'top_own_time': [{'seconds': s, 'function': n} for s, n in rows[:args.top]],
           'load_avg_start': load0, 'load_avg_end': os.getloadavg(),
           'note': 'shared machine: seconds are distorted by other jobs (see load_avg); the fraction is the result'}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, 'w') as f: json.dump(doc, f, indent=2)
    print(f'network: {netw:.1f} s of {total:.1f} s profiled ({100 * netw / total:.1f} %), tile {tile}, overlap {overlap}; '
          f'load {load0[0]:.1f}; wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
