"""Training speed of the PSSR U-Net: mode 'lr' (U-Net at input size) vs 'upsampled' (original PSSR, U-Net at
output size), with and without channels_last, at the same OUTPUT tile size, in one run.

One step = forward + MSE loss + backward + Adam step on random data (speed does not depend on the values).
The optimiser is torch's fused Adam (`--opt fused`, 5x faster than the default per-parameter loop on CPU for
these ~41 M-parameter models; its cost is the same in both modes); `--opt plain` / `--opt fastai` for the others.
The forward+backward time is also reported on its own.
Configurations are measured in interleaved rounds (each round times a few steps of every configuration), so a
change in machine load (other users) affects all of them alike; we report the median step time.

    .venv/bin/python bench/train_speed.py [--arch resnet34] [--size 128] [--bs 8] [--scale 4] [--rounds 4]

Prints a table and writes bench/results/train_speed.json (atomically). Not a test: numbers depend on the machine.
"""
import argparse, json, os, platform, statistics, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pssr.io import atomic_write
from pssr.models import pssr_unet, conv_macs


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--arch', default='resnet34')
    p.add_argument('--size', type=int, default=128, help='output (HR) tile size, px')
    p.add_argument('--bs', type=int, default=8)
    p.add_argument('--scale', type=int, default=4)
    p.add_argument('--warmup', type=int, default=3, help='untimed steps per configuration')
    p.add_argument('--rounds', type=int, default=4, help='interleaved timing rounds')
    p.add_argument('--steps', type=int, default=3, help='timed steps per configuration per round')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: all cores)')
    p.add_argument('--opt', choices=('fused', 'plain', 'fastai'), default='fused', help='Adam implementation')
    p.add_argument('--out', type=Path, default=ROOT / 'bench' / 'results' / 'train_speed.json')
    return p.parse_args(argv)


class Config:
    "One model being timed: its net, optimiser and a fixed random batch."
    def __init__(self, mode, channels_last, a):
        torch.manual_seed(0)
        self.mode, self.channels_last = mode, channels_last
        self.net = pssr_unet(a.arch, scale=a.scale, mode=mode, size=a.size, channels_last=channels_last).train()
        self.opt = make_opt(self.net, a.opt)
        self.x = torch.rand(a.bs, 1, a.size // a.scale, a.size // a.scale)
        self.y = torch.rand(a.bs, 1, a.size, a.size)
        self.times, self.fwd_bwd_times = [], []

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


def run(a) -> dict:
    "Time every configuration; return the results record."
    if a.threads: torch.set_num_threads(a.threads)
    load_before = os.getloadavg()
    if load_before[0] > 0.5 * os.cpu_count():
        print(f'warning: load average {load_before[0]:.1f} on {os.cpu_count()} cores: other processes compete, '
              f'timings are inflated (use --threads 1 to avoid thread oversubscription)', file=sys.stderr)
    configs = [Config(m, cl, a) for m in ('lr', 'upsampled') for cl in (False, True)]
    for c in configs:
        for _ in range(a.warmup): c.step()
        c.times, c.fwd_bwd_times = [], []
    for r in range(a.rounds):
        for c in configs:
            for _ in range(a.steps): c.step()
        print(f'round {r + 1}/{a.rounds} done, load {os.getloadavg()[0]:.2f}', file=sys.stderr)
    macs = {m: conv_macs(pssr_unet(a.arch, scale=a.scale, mode=m, size=a.size), torch.zeros(1, 1, a.size // a.scale, a.size // a.scale))
            for m in ('lr', 'upsampled')}
    rows = []
    for c in configs:
        med = statistics.median(c.times)
        rows.append(dict(mode=c.mode, channels_last=c.channels_last, median_step_s=round(med, 4),
                         mean_step_s=round(statistics.mean(c.times), 4), min_step_s=round(min(c.times), 4),
                         median_fwd_bwd_s=round(statistics.median(c.fwd_bwd_times), 4),
                         tiles_per_s=round(a.bs / med, 2), n_timed_steps=len(c.times),
                         gmac_per_tile=round(macs[c.mode] / 1e9, 3),
                         n_params=sum(p.numel() for p in c.net.parameters())))
    speed = {(r['mode'], r['channels_last']): r['tiles_per_s'] for r in rows}
    fb = {(r['mode'], r['channels_last']): r['median_fwd_bwd_s'] for r in rows}
    best = lambda m: max(speed[m, False], speed[m, True])
    return dict(
        benchmark='train_speed', arch=a.arch, output_size=a.size, input_size=a.size // a.scale, batch=a.bs, scale=a.scale,
        step=f'forward + MSE + backward + Adam ({a.opt}), random data', optimizer=a.opt, warmup_steps=a.warmup, rounds=a.rounds, steps_per_round=a.steps,
        results=rows,
        lr_over_upsampled_fwd_bwd=round(fb['upsampled', False] / fb['lr', False], 2),
        lr_over_upsampled={'contiguous': round(speed['lr', False] / speed['upsampled', False], 2),
                           'channels_last': round(speed['lr', True] / speed['upsampled', True], 2),
                           'best_vs_best': round(best('lr') / best('upsampled'), 2)},
        channels_last_gain={m: round(speed[m, True] / speed[m, False] - 1, 3) for m in ('lr', 'upsampled')},
        machine=dict(cpu=cpu_name(), cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                     loadavg_before=[round(x, 2) for x in load_before], loadavg_after=[round(x, 2) for x in os.getloadavg()],
                     torch=torch.__version__, python=platform.python_version()),
        date=time.strftime('%Y-%m-%d %H:%M:%S'))


def cpu_name() -> str:
    "The CPU model from /proc/cpuinfo (Linux), else platform.processor()."
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor()


def print_table(rec: dict):
    print(f"{rec['arch']}, {rec['output_size']} px output ({rec['input_size']} px input, x{rec['scale']}), batch {rec['batch']}, "
          f"{rec['machine']['torch_threads']} threads, load {rec['machine']['loadavg_before'][0]} -> {rec['machine']['loadavg_after'][0]}")
    print(f"{'mode':<10} {'channels_last':>13} {'step s (median)':>16} {'fwd+bwd s':>10} {'tiles/s':>8} {'GMAC/tile':>10}")
    for r in rec['results']:
        print(f"{r['mode']:<10} {str(r['channels_last']):>13} {r['median_step_s']:>16.3f} {r['median_fwd_bwd_s']:>10.3f} "
              f"{r['tiles_per_s']:>8.2f} {r['gmac_per_tile']:>10.2f}")
    print('lr / upsampled training speed:', rec['lr_over_upsampled'], f"(fwd+bwd only: {rec['lr_over_upsampled_fwd_bwd']})")
    print('channels_last gain:', rec['channels_last_gain'], f"  optimizer: Adam ({rec['optimizer']})")


def main(argv=None):
    a = parse_args(argv)
    rec = run(a)
    print_table(rec)
    with atomic_write(a.out, 'w') as f: json.dump(rec, f, indent=2)
    print(f'wrote {a.out}')


if __name__ == '__main__':
    main()
