"""Training speed per tile: pssr's default model against PSSR's ResNet-34 U-Net (both modes) and PSSR2's ResUNet,
at the same OUTPUT tile size, in one run.

One step = forward + MSE loss + backward + Adam step on random data (speed does not depend on the values), with
the same optimiser for every model (torch's fused Adam, `--opt fused`; `--opt plain` / `--opt fastai` for the
others). Configurations are measured in interleaved rounds (each round times a few steps of every
configuration), so a change in machine load affects all of them alike; we report the median step time.

PSSR2 (PyPI `pssr` 2.4.0, a different project with the same import name) is measured with its own `ResUNet`
(default widths 64-1024, depth 3): the wheel is downloaded from PyPI once into ~/.cache/pssr-bench and its two
model files are imported under another package name; nothing of it is kept in this repository. `--no-pssr2`
skips it.

    .venv/bin/python bench/train_speed.py [--size 128] [--bs 8] [--scale 4] [--rounds 4] [--threads 2]

Prints a table and writes bench/results/train_speed.json (atomically). Not a test: numbers depend on the machine.
Run it on an otherwise idle machine.
"""
import argparse, ast, json, os, platform, statistics, subprocess, sys, time, zipfile
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pssr.io import atomic_write
from pssr.models import pssr_unet, conv_macs
from pssr.learner import TrainConfig, PRESETS

PSSR2_VERSION = '2.4.0'
CACHE = Path.home() / '.cache' / 'pssr-bench'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', type=int, default=128, help='output (HR) tile size, px')
    p.add_argument('--bs', type=int, default=8)
    p.add_argument('--scale', type=int, default=4)
    p.add_argument('--warmup', type=int, default=3, help='untimed steps per configuration')
    p.add_argument('--rounds', type=int, default=4, help='interleaved timing rounds')
    p.add_argument('--steps', type=int, default=3, help='timed steps per configuration per round')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: all cores)')
    p.add_argument('--opt', choices=('fused', 'plain', 'fastai'), default='fused', help='Adam implementation')
    p.add_argument('--no-pssr2', action='store_true', help="skip PSSR2's ResUNet")
    p.add_argument('--out', type=Path, default=ROOT / 'bench' / 'results' / 'train_speed.json')
    return p.parse_args(argv)


def pssr2_resunet():
    "PSSR2's `ResUNet` class, imported from its PyPI wheel under the package name `pssr2_bench` (None if unavailable)."
    pkg = CACHE / f'pssr2_{PSSR2_VERSION}' / 'pssr2_bench'
    if not (pkg / 'models' / 'resunet.py').is_file():
        wheel = CACHE / f'pssr-{PSSR2_VERSION}-py3-none-any.whl'
        if not wheel.is_file():
            r = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', f'pssr=={PSSR2_VERSION}', '-d', str(CACHE)],
                               capture_output=True, text=True)
            if r.returncode or not wheel.is_file():
                print(f'PSSR2 wheel not available ({r.stderr.strip()[:120]}): skipped', file=sys.stderr)
                return None
        (pkg / 'models').mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for name in ('_blocks.py', 'resunet.py'): (pkg / 'models' / name).write_bytes(z.read(f'pssr/models/{name}'))
            util = z.read('pssr/util.py').decode()  # only `_force_list` is needed; util itself imports pytorch_msssim
        fn = next(n for n in ast.parse(util).body if isinstance(n, ast.FunctionDef) and n.name == '_force_list')
        (pkg / 'util.py').write_text(ast.get_source_segment(util, fn) + '\n')
        for d in (pkg, pkg / 'models'): (d / '__init__.py').write_text('')
    sys.path.insert(0, str(pkg.parent))
    from pssr2_bench.models.resunet import ResUNet
    return ResUNet


class Config:
    "One model being timed: its net, optimiser and a fixed random batch."
    def __init__(self, name, net, a, value_range=1.0):
        torch.manual_seed(0)
        self.name, self.net = name, net.train()
        self.opt = make_opt(self.net, a.opt)
        self.x = torch.rand(a.bs, 1, a.size // a.scale, a.size // a.scale) * value_range
        self.y = torch.rand(a.bs, 1, a.size, a.size) * value_range
        self.times, self.fwd_bwd_times = [], []
        self.gmac = conv_macs(net, self.x[:1]) / 1e9
        self.n_params = sum(p.numel() for p in net.parameters())
        self.net.train()

    def step(self):
        "One training step; records its wall time and that of forward+backward, in seconds."
        t0 = time.perf_counter()
        self.opt.zero_grad()
        F.mse_loss(self.net(self.x), self.y).backward()
        t1 = time.perf_counter()
        self.opt.step()
        t2 = time.perf_counter()
        self.times.append(t2 - t0); self.fwd_bwd_times.append(t1 - t0)


def make_opt(net, kind: str):
    "Adam: torch's fused (CPU/GPU kernel), torch's per-parameter loop, or fastai's."
    if kind == 'fastai':
        from fastai.optimizer import Adam
        return Adam(list(net.parameters()), 1e-4)
    return torch.optim.Adam(net.parameters(), 1e-4, fused=(kind == 'fused'))


def configurations(a) -> list:
    "pssr's default, PSSR's ResNet-34 in both modes, and PSSR2's ResUNet."
    d = TrainConfig()
    out = [Config(f'pssr default ({d.arch})', pssr_unet(d.arch, scale=a.scale, mode=d.mode, size=a.size), a)]
    for name in ('pssr-resnet34', 'pssr-original'):
        p = PRESETS[name]
        out.append(Config(f"{name} ({p['arch']}, {p['mode']})", pssr_unet(p['arch'], scale=a.scale, mode=p['mode'], size=a.size), a))
    ResUNet = None if a.no_pssr2 else pssr2_resunet()
    if ResUNet is not None: out.append(Config(f'PSSR2 {PSSR2_VERSION} ResUNet', ResUNet(scale=a.scale), a, value_range=255.))
    return out


def run(a) -> dict:
    "Time every configuration; return the results record."
    if a.threads: torch.set_num_threads(a.threads)
    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        print(f'warning: load average {load_before[0]:.1f}: other processes compete, timings are inflated', file=sys.stderr)
    configs = configurations(a)
    for c in configs:
        for _ in range(a.warmup): c.step()
        c.times, c.fwd_bwd_times = [], []
    for r in range(a.rounds):
        for c in configs:
            for _ in range(a.steps): c.step()
        print(f'round {r + 1}/{a.rounds} done, load {os.getloadavg()[0]:.2f}', file=sys.stderr)
    rows = [dict(model=c.name, median_step_s=round(statistics.median(c.times), 4), min_step_s=round(min(c.times), 4),
                 median_fwd_bwd_s=round(statistics.median(c.fwd_bwd_times), 4),
                 tiles_per_s=round(a.bs / statistics.median(c.times), 2), n_timed_steps=len(c.times),
                 gmac_per_tile=round(c.gmac, 3), n_params=c.n_params) for c in configs]
    pssr2 = next((r for r in rows if r['model'].startswith('PSSR2')), None)
    for r in rows: r['vs_pssr2'] = round(r['tiles_per_s'] / pssr2['tiles_per_s'], 2) if pssr2 else None
    return dict(
        benchmark='train_speed', output_size=a.size, input_size=a.size // a.scale, batch=a.bs, scale=a.scale,
        step=f'forward + MSE + backward + Adam ({a.opt}), random data', optimizer=a.opt, warmup_steps=a.warmup,
        rounds=a.rounds, steps_per_round=a.steps, results=rows,
        machine=dict(cpu=cpu_name(), cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                     loadavg_before=[round(x, 2) for x in load_before], loadavg_after=[round(x, 2) for x in os.getloadavg()],
                     torch=torch.__version__, python=platform.python_version()),
        date=time.strftime('%Y-%m-%d %H:%M:%S'))


def cpu_name() -> str:
    "The CPU model from /proc/cpuinfo (Linux), else platform.processor()."
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor()


def print_table(rec: dict):
    print(f"{rec['output_size']} px output ({rec['input_size']} px input, x{rec['scale']}), batch {rec['batch']}, "
          f"{rec['machine']['torch_threads']} threads, load {rec['machine']['loadavg_before'][0]} -> {rec['machine']['loadavg_after'][0]}")
    print(f"{'model':<40} {'step s':>8} {'fwd+bwd s':>10} {'tiles/s':>8} {'x PSSR2':>8} {'GMAC/tile':>10} {'params':>11}")
    for r in rec['results']:
        print(f"{r['model']:<40} {r['median_step_s']:>8.3f} {r['median_fwd_bwd_s']:>10.3f} {r['tiles_per_s']:>8.2f} "
              f"{r['vs_pssr2'] or float('nan'):>8.2f} {r['gmac_per_tile']:>10.3f} {r['n_params']:>11,}")


def main(argv=None):
    a = parse_args(argv)
    rec = run(a)
    print_table(rec)
    with atomic_write(a.out, 'w') as f: json.dump(rec, f, indent=2)
    print(f'wrote {a.out}')


if __name__ == '__main__':
    main()
