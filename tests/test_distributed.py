"Restoring on dask.distributed workers: a 2-process LocalCluster equals the single-process path, also after a worker is killed mid-run."
import os, signal

import numpy as np
import pytest
import torch
from distributed import as_completed, wait

from pssr.io import read_image, write_tiff
from pssr.models import pssr_unet
from pssr.predict import predict_file, predict_lazy, output_path, write_ome_zarr, read_ome_zarr
from pssr.distributed import dask_client, open_lazy, submit_blocks

torch.set_num_threads(1)
KW = dict(tile=64, overlap=16, bs=2, progress=False)


def seeded_net(seed=0):
    "The default architecture at 2x, seeded, its residual branches perturbed (an untrained lr_resnet is nearly bilinear)."
    torch.manual_seed(seed)
    net = pssr_unet('lr_resnet', scale=2, mode='lr').eval()
    with torch.no_grad():
        for p in net.parameters(): p.add_(torch.randn_like(p) * 0.02)
    return net


@pytest.fixture(scope='module')
def client():
    with dask_client(workers=2) as c: yield c


@pytest.fixture(scope='module')
def net(): return seeded_net()


@pytest.fixture
def tif(tmp_path):
    img = (np.random.default_rng(0).random((256, 192)) * 4000).astype(np.uint16)
    return write_tiff(tmp_path / 'in.tif', img, pixel_size=0.1)


def test_two_workers_equal_single_process(client, net, tif, tmp_path):
    assert len(client.scheduler_info()['workers']) == 2
    one, meta1 = read_image(predict_file(net, tif, tmp_path / 'one', lazy=True, **KW))
    two, meta2 = read_image(predict_file(net, tif, tmp_path / 'two', client=client, **KW))
    assert two.shape == (512, 384)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-5 * np.abs(one).max())
    assert meta2.pixel_size == pytest.approx(0.05)


def test_ome_zarr_on_workers(client, net, tmp_path):
    vol = (np.random.default_rng(1).random((2, 96, 128)) * 1000).astype(np.float32)
    zp = write_ome_zarr(tmp_path / 'vol.ome.zarr', vol, pixel_size=0.2, chunks=(1, 32, 32))
    one = read_ome_zarr(predict_file(net, zp, tmp_path / 'one', **KW))[0][:]
    two = read_ome_zarr(predict_file(net, zp, tmp_path / 'two', client=client, **KW))[0][:]
    assert two.shape == (2, 192, 256)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-5 * np.abs(one).max())


def test_killed_worker_blocks_are_rerun(client, net, tif, tmp_path):
    "Kill one worker after the first block is done: its blocks are re-run elsewhere and the output is identical."
    seen = {}
    def killing_restore(plan, dst):
        name, futures = submit_blocks(client, net, str(tif), plan, dst, bs=2)
        try:
            next(as_completed(futures))
            busy = [w for w, keys in client.processing().items() if keys]
            seen['pending'] = sum(not f.done() for f in futures)
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            wait(futures)
            seen['errors'] = [f.exception() for f in futures if f.status != 'finished']
        finally: client.unregister_worker_plugin(name)
    arr, meta = open_lazy(tif)
    out = predict_lazy(net, arr, meta, output_path(tif, tmp_path / 'killed'), block=32, restore_fn=killing_restore, **KW)
    assert seen['pending'] > 0 and seen['errors'] == []  # killed mid-run, every block finished
    ref = predict_lazy(net, arr, meta, output_path(tif, tmp_path / 'ref'), block=32, **KW)
    np.testing.assert_allclose(read_image(out)[0], read_image(ref)[0], rtol=0, atol=1e-5 * np.abs(read_image(ref)[0]).max())


def test_cli_dask_scheduler(client, net, tif, tmp_path, capsys):
    "`pssr predict --dask-scheduler ADDRESS` restores on a running cluster; `--workers` with it is refused (exit 2)."
    from pssr.cli import main
    from pssr.learner import save_model
    model = save_model(net, tmp_path / 'models' / 'm')
    addr = client.scheduler.address
    assert main(['predict', str(model), str(tif), '-o', str(tmp_path / 'out'), '--tile', '64', '--overlap', '16', '-q',
                 '--dask-scheduler', addr]) == 0
    ref, _ = read_image(predict_file(model, tif, tmp_path / 'ref', lazy=True, **KW))
    got, _ = read_image(tmp_path / 'out' / 'in_pssr.tif')
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    assert main(['predict', str(model), str(tif), '-o', str(tmp_path / 'out2'), '--workers', '2', '--dask-scheduler', addr]) == 2
    assert 'cannot be combined' in capsys.readouterr().err
    assert not (tmp_path / 'out2' / 'in_pssr.tif').exists()
