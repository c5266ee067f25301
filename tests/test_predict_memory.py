"""Peak memory of `pssr predict` with the default model stays within `--max-memory` (issue 13).

Each restore runs as a child process that reports its own peak resident memory (`VmHWM` of /proc/self/status, the
high-water mark of its address space since exec: `ru_maxrss` would include the forking pytest process). It does not
depend on the machine's load. The model is the default `TrainConfig()` architecture
(`lr_resnet`, x4), seeded and untrained: random weights cost the same memory as trained ones.
"""
import os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pssr.io import read_image, read_ome_zarr, write_tiff
from pssr.learner import TrainConfig, save_model
from pssr.models import pssr_unet
from pssr.predict import MAX_MEMORY, parse_memory


@pytest.fixture(scope='module')
def default_model(tmp_path_factory) -> Path:
    "The default training architecture, seeded, saved as a .pth + .json pair."
    cfg = TrainConfig()
    torch.manual_seed(0)
    net = pssr_unet(**{**cfg.model_kwargs(), 'pretrained': False, 'weights': None})
    return save_model(net, tmp_path_factory.mktemp('model') / 'default', cfg)


HWM = ("import atexit, sys\natexit.register(lambda: open(sys.argv[1], 'w').write("
       "next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))))\n")


def child_peak(code:str, args:list, folder:Path) -> int:
    "Run python `code` with `args` in a child process; its peak RSS in bytes (VmHWM, KiB on Linux); fails the test if it fails."
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    with open(folder / 'stderr.txt', 'w+') as err:
        proc = subprocess.run([sys.executable, '-c', HWM + code, str(folder / 'hwm.txt'), *map(str, args)],
                              stdout=subprocess.DEVNULL, stderr=err, env=env)
        err.seek(0)
        assert proc.returncode == 0, err.read()[-2000:]
    return int((folder / 'hwm.txt').read_text()) * 1024


def peak_rss_of_predict(args:list, folder:Path) -> int:
    "Run `pssr predict ARGS` in a child process; its peak RSS in bytes."
    return child_peak('from pssr.cli import main; sys.exit(main(sys.argv[2:]))', ['predict', '-q', *args], folder)


@pytest.mark.parametrize('side, budget', [(1024, None), (512, '1.5G')])
def test_predict_peak_rss_within_budget(tmp_path, default_model, side, budget):
    "A default `pssr predict` of a 1024² uint16 TIFF stays under 2 GB; a 512² one under a lowered --max-memory 1.5G."
    x = (np.random.default_rng(0).random((side, side)) * 4000 + 500).astype(np.uint16)
    inp = write_tiff(tmp_path / f'in_{side}.tif', x, pixel_size=0.032)
    args = [default_model, inp, '-o', tmp_path / 'out'] + (['--max-memory', budget] if budget else [])
    peak = peak_rss_of_predict(args, tmp_path)
    limit = parse_memory(budget) if budget else MAX_MEMORY
    y, meta = read_image(tmp_path / 'out' / f'in_{side}_pssr.tif')
    assert y.shape == (4 * side, 4 * side) and np.isfinite(y).all()
    assert meta.pixel_size == pytest.approx(0.008)
    assert peak < limit, f'peak RSS {peak / 2**30:.2f} GiB over the {limit / 2**30:.2f} GiB budget'


FLAT_CHILD = '''
import sys, numpy as np, torch
from torch import nn
from pssr.predict import create_ome_zarr, iter_blocks, predict_zarr
torch.set_num_threads(1)
side, folder = int(sys.argv[2]), sys.argv[3]
arr = create_ome_zarr(f'{folder}/in.ome.zarr', (side, side), (512, 512), 'YX', [0.032, 0.032], dtype='uint16')
for i, sl in enumerate(iter_blocks((side, side), 512)):
    arr[sl] = np.random.default_rng(i).integers(0, 4000, (512, 512), dtype=np.uint16)
net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1), nn.PixelShuffle(4)).eval()
net.scale, net.n_frames = 4, 1
predict_zarr(net, f'{folder}/in.ome.zarr', f'{folder}/out', progress=False, dtype='uint16', block=256)
'''


def test_out_of_core_memory_is_flat(tmp_path):
    "The OME-Zarr path (blocks, scratch arrays, pyramid) holds no more for a 4096² output than for a 2048² one (256 px blocks)."
    peaks = {}
    for side in (512, 1024):
        folder = tmp_path / str(side); folder.mkdir()
        peaks[side] = child_peak(FLAT_CHILD, [side, folder], folder)
        assert (folder / 'out' / 'in_pssr.zarr').exists()
    assert peaks[1024] < peaks[512] + 100 * 2**20, {k: f'{v / 2**20:.0f} MiB' for k, v in peaks.items()}
    assert max(peaks.values()) < MAX_MEMORY


LEAN_CHILD = '''
import sys
from pssr.cli import main
assert main(sys.argv[2:]) == 0
heavy = sorted(m for m in ('fastai', 'torchvision', 'torch._dynamo', 'pandas', 'matplotlib', 'dask', 'skimage') if m in sys.modules)
assert not heavy, f'pssr predict imported {heavy}'
'''


def test_predict_startup_imports_no_fastai(tmp_path, default_model):
    "`pssr predict` with the default architecture builds the network with torch alone: no fastai, torchvision or torch._dynamo import (start-up)."
    x = (np.random.default_rng(0).random((64, 64)) * 4000).astype(np.uint16)
    inp = write_tiff(tmp_path / 'in.tif', x, pixel_size=0.032)
    child_peak(LEAN_CHILD, ['predict', '-q', default_model, inp, '-o', tmp_path / 'out'], tmp_path)
    y, _ = read_image(tmp_path / 'out' / 'in_pssr.tif')
    assert y.shape == (256, 256) and np.isfinite(y).all()
