"Self-supervised training from the command line (`pssr train --noisy`): tiny runs, the FNSM saved and reloaded, bad options exit 2."
import contextlib, io, json
import numpy as np
import pytest
import torch
from pssr.cli import main
from pssr.data import synthetic_timelapse
from pssr.io import write_tiff
from pssr.learner import load_model, TrainConfig
from pssr.predict import restore
from pssr.selfsup import FNSM, fnsm_modules

torch.set_num_threads(1)
TINY = ['--arch', 'unet_small', '--size', 32, '--bs', 2, '--tiles', 2, '--epochs', 1]


def run_cli(*argv) -> tuple[int, str, str]:
    "`pssr train ...` in-process: (exit code, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main(['train', *map(str, argv)])
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def noisy_dir(tmp_path_factory):
    "Two noisy 6-frame time-lapses (uint16, Poisson) and nothing clean."
    d = tmp_path_factory.mktemp('noisy')
    rng = np.random.default_rng(0)
    for i in range(2):
        clean = synthetic_timelapse(6, 48, seed=i)
        write_tiff(d / f'movie_{i}.tif', rng.poisson(clean * 200).astype(np.uint16), pixel_size=0.1, axes='TYX')
    return d


def test_cli_tis_fnsm_trains_saves_reloads(noisy_dir, tmp_path):
    m = tmp_path / 'm'
    code, out, err = run_cli('--noisy', noisy_dir, '--self-supervised', 'time', '--fnsm', '--na', 1.2, '--wavelength', 520,
                             '--name', 'dn', '--models-dir', m, *TINY)
    assert code == 0, err
    rec = json.loads((m / 'dn.json').read_text())
    assert rec['config']['noisy'] == str(noisy_dir) and rec['config']['self_supervised'] == 'time' and rec['config']['amend']
    assert rec['model']['scale'] == 1 and rec['data']['kind'] == 'noisy'  # --noisy without --scale: a denoiser
    r0 = rec['model']['fnsm_radius']
    assert abs(r0 - 4 * 1.2 * 0.1 / 0.520) < 1e-4  # initial radius = OTF cut-off 2 NA / λ at 100 nm pixels
    net, rec2 = load_model(m / 'dn')
    (fn,) = fnsm_modules(net)
    assert isinstance(fn, FNSM) and abs(float(fn.radius.detach()) - rec['fnsm'][0]['radius']) < 1e-5
    assert float(fn.steepness) == rec['fnsm'][0]['steepness']
    img = np.random.default_rng(1).poisson(synthetic_timelapse(1, 48, seed=5)[0] * 200).astype(np.float32)
    out_img = restore(net, img, progress=False)
    assert out_img.shape == img.shape and np.isfinite(out_img).all()


@pytest.mark.parametrize('mode, extra', [('space', ['--no-amend']), ('subsample', ['--scale', 2])])
def test_cli_other_modes(noisy_dir, tmp_path, mode, extra):
    size = ['--size', 16] if mode == 'subsample' else []
    code, out, err = run_cli('--noisy', noisy_dir, '--self-supervised', mode, '--name', mode, '--models-dir', tmp_path, *TINY, *size, *extra)
    assert code == 0, err
    rec = json.loads((tmp_path / f'{mode}.json').read_text())
    assert rec['config']['self_supervised'] == mode and rec['fnsm'] is None
    if mode == 'space': assert rec['config']['amend'] is False
    else: assert rec['model']['scale'] == 2


@pytest.mark.parametrize('args, msg', [
    (['--self-supervised', 'tis'], 'invalid choice'),                       # unknown mode
    (['--self-supervised', 'time', '--frames', 4], 'n_frames'),               # multi-frame input needs a centre frame (odd)
    (['--self-supervised', 'time', '--na', 1.2], 'wavelength'),               # OTF cut-off needs both
    (['--self-supervised', 'time', '--fnsm-radius', -1], 'fnsm-radius'),      # negative radius
    (['--self-supervised', 'time', '--size', 64], 'smaller than'),            # crop larger than the 48 px frames
])
def test_cli_bad_options_exit_2(noisy_dir, tmp_path, args, msg):
    code, out, err = run_cli('--noisy', noisy_dir, '--models-dir', tmp_path, '--epochs', 1, *args)
    assert code == 2, (out, err)
    assert err.startswith('pssr') and len(err.strip().splitlines()) <= 2, err
    assert msg in err


def test_cli_noisy_and_clean_exclusive(noisy_dir, tmp_path):
    code, out, err = run_cli('--noisy', noisy_dir, '--hr', noisy_dir, '--models-dir', tmp_path)
    assert code == 2 and 'not allowed with' in err


def test_self_supervised_needs_noisy():
    with pytest.raises(Exception, match='needs noisy data'): TrainConfig(self_supervised='time')


def test_too_few_frames_one_line(tmp_path):
    d = tmp_path / 'short'; d.mkdir()
    write_tiff(d / 'm.tif', np.random.default_rng(0).poisson(synthetic_timelapse(3, 48) * 50).astype(np.uint16), axes='TYX')
    code, out, err = run_cli('--noisy', d, '--self-supervised', 'time', '--models-dir', tmp_path / 'm', *TINY)
    assert code == 2 and 'needs 4' in err and len(err.strip().splitlines()) == 1, err


def test_multiframe_variant_never_sees_its_target(noisy_dir, tmp_path):
    "n_frames=5 (frames t-2..t+2 without t -> t): trains through `train`, reloads, and the output at t ignores frame t."
    from pssr.learner import train
    from pssr.selfsup import noisy_dataloaders, BlindCentre
    dls = noisy_dataloaders(str(noisy_dir), 'time', n_frames=5, size=32, bs=2, tiles_per_image=2)
    xb, yb = dls.one_batch()
    assert xb.shape[1:] == (5, 32, 32) and yb.shape[1:] == (1, 32, 32) and (xb[:, 2] == 0).all()
    train(TrainConfig(name='mf', n_frames=5, scale=1, arch='unet_small', size=32, bs=2, epochs=1, models_dir=str(tmp_path)), dls=dls)
    net, rec = load_model(tmp_path / 'mf')
    assert net.n_frames == 5
    stack = np.random.default_rng(2).poisson(synthetic_timelapse(6, 48, seed=7) * 200).astype(np.float32)
    changed = stack.copy()
    changed[3] = np.random.default_rng(3).permutation(stack[3].ravel()).reshape(stack[3].shape)  # frame t scrambled (same values: same normalisation)
    out, out2 = (restore(BlindCentre(net), s, progress=False, pmin=0, pmax=100) for s in (stack, changed))
    assert out.shape == stack.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(out[3], out2[3])  # frame 3's estimate never used frame 3
    assert not np.array_equal(out[2], out2[2])  # ... but its neighbours' estimates do


def test_multiframe_from_the_command_line(noisy_dir, tmp_path):
    "`pssr train --noisy DIR --frames 5`: the saved model reloads blind to its centre frame, so `pssr predict` needs no flag."
    from pssr.selfsup import BlindCentre
    code, out, err = run_cli('--noisy', noisy_dir, '--self-supervised', 'time', '--frames', 5, '--scale', 1, '--name', 'mf5',
                             '--models-dir', tmp_path, *TINY)
    assert code == 0, err
    net, rec = load_model(tmp_path / 'mf5')
    assert isinstance(net, BlindCentre) and rec.n_frames == 5 and rec.config.noisy is not None
    stack = np.random.default_rng(2).poisson(synthetic_timelapse(6, 48, seed=7) * 200).astype(np.float32)
    changed = stack.copy()
    changed[3] = np.random.default_rng(3).permutation(stack[3].ravel()).reshape(stack[3].shape)
    out, out2 = (restore(net, s, progress=False, pmin=0, pmax=100) for s in (stack, changed))
    np.testing.assert_array_equal(out[3], out2[3])


def single_images(d, rng, n=2):
    "`n` noisy 2D images (uint16, Poisson) in the folder `d`."
    d.mkdir()
    for i in range(n):
        write_tiff(d / f'img_{i}.tif', rng.poisson(synthetic_timelapse(1, 64, seed=i)[0] * 100).astype(np.uint16), axes='YX')
    return d


def test_neighbor2neighbor_model_restores_at_full_resolution(tmp_path):
    "A sub-image model trained with Neighbor2Neighbor's regulariser (`n2n_gamma`) records it and restores the full image directly (no `SubImages`)."
    from pssr.selfsup import SubImages, N2N_GAMMA, noisy_dataloaders
    from pssr.learner import train
    from pssr.predict import load_for_restore
    rng = np.random.default_rng(0)
    d = single_images(tmp_path / 'single', rng)
    cfg = TrainConfig(noisy=str(d), self_supervised='subsample', scale=1, arch='unet_small', size=16, bs=2, tiles_per_image=2, epochs=1,
                      name='sub', models_dir=str(tmp_path / 'm'))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train(cfg, dls=noisy_dataloaders(str(d), 'subsample', size=16, bs=2, tiles_per_image=2, n2n_gamma=N2N_GAMMA))
    net, rec = load_model(tmp_path / 'm' / 'sub')
    assert rec.data['split']['n2n_gamma'] == N2N_GAMMA and rec.scale == 1
    assert not isinstance(net, SubImages) and not isinstance(load_for_restore(tmp_path / 'm' / 'sub'), SubImages)
    img = rng.poisson(synthetic_timelapse(1, 64, seed=5)[0] * 100).astype(np.float32)[:61, :63]  # odd sides
    res = restore(net, img, progress=False)
    assert res.shape == img.shape and np.isfinite(res).all()


def test_subimage_model_predicts_at_its_training_scale(tmp_path):
    "`pssr train --self-supervised subsample` (plain sub-image pairs) reloads wrapped in `SubImages` (four phases averaged), as the GigaDB bench measured."
    from pssr.selfsup import SubImages
    from pssr.predict import load_for_restore
    rng = np.random.default_rng(0)
    d = single_images(tmp_path / 'single', rng)
    code, out, err = run_cli('--noisy', d, '--self-supervised', 'subsample', '--name', 'sub', '--models-dir', tmp_path / 'm', *TINY, '--size', 16)
    assert code == 0, err
    net, rec = load_model(tmp_path / 'm' / 'sub')
    assert isinstance(net, SubImages) and net.combine == 'average' and net.record is rec and rec.scale == 1
    assert rec.data['split']['n2n_gamma'] == 0
    assert isinstance(load_for_restore(tmp_path / 'm' / 'sub'), SubImages)  # `pssr predict`'s loader restores it the same way
    img = rng.poisson(synthetic_timelapse(1, 64, seed=5)[0] * 100).astype(np.float32)[:61, :63]  # odd sides
    res = restore(net, img, progress=False)
    assert res.shape == img.shape and np.isfinite(res).all()
    phases = [restore(net.model, img[dy::2, dx::2], progress=False) for dy in (0, 1) for dx in (0, 1)]
    np.testing.assert_allclose(res[::2, ::2].mean(), np.mean([p.mean() for p in phases]), rtol=0.05)  # the four phases' estimates, averaged


def test_blindspot_from_the_command_line(tmp_path):
    "`pssr train --self-supervised blindspot` records each image's blind-spot shape (line-correlated noise: 'x'), restores the full image unwrapped, and refuses a scale > 1."
    from pssr.selfsup import SubImages, BlindCentre
    from pssr.predict import load_for_restore
    rng = np.random.default_rng(0)
    d = tmp_path / 'single'; d.mkdir()
    clean = synthetic_timelapse(2, 64, seed=1) * 100
    write_tiff(d / 'widefield.tif', rng.poisson(clean[0]).astype(np.uint16), axes='YX')
    white = rng.normal(0, 20, (64, 65))
    write_tiff(d / 'confocal.tif', np.clip(clean[1] + 200 + white[:, 1:] + white[:, :-1], 0, None).astype(np.uint16), axes='YX')  # noise correlated along rows
    code, out, err = run_cli('--noisy', d, '--self-supervised', 'blindspot', '--name', 'bs', '--models-dir', tmp_path / 'm', *TINY)
    assert code == 0, err
    net, rec = load_model(tmp_path / 'm' / 'bs')
    axes = {k.split('/')[-1]: v for k, v in rec.data['split']['blind_axes'].items()}
    assert axes == {'widefield.tif': None, 'confocal.tif': 'x'}, axes
    assert not isinstance(net, (SubImages, BlindCentre)) and not isinstance(load_for_restore(tmp_path / 'm' / 'bs'), (SubImages, BlindCentre))
    res = restore(net, clean[0][:61, :63], progress=False)
    assert res.shape == (61, 63) and np.isfinite(res).all()
    code, out, err = run_cli('--noisy', d, '--self-supervised', 'blindspot', '--scale', 2, '--models-dir', tmp_path / 'm2', *TINY)
    assert code == 2 and 'denoiser' in err and len(err.strip().splitlines()) <= 2, err
