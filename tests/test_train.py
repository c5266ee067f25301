"End-to-end, resume, save/load, CLI and bad-input tests for `pssr.learner` (tiny models on synthetic data)."
import argparse, contextlib, dataclasses, io, json, os
from pathlib import Path
import numpy as np, pytest, torch
from fastai.callback.core import Callback
from pssr.io import PssrInputError
from pssr.data import write_synthetic
from pssr.cli import add_train as add_cli
from pssr.config import ModelRecord
from pssr.learner import (TrainConfig, train, pssr_learner, config_dataloaders, save_model, load_model,
                          list_checkpoints, checkpoint_dir, is_distributed, distrib_context,
                          fit_one_cycle_maybe_distributed, EpochSeed)

torch.set_num_threads(1)
ARCH, SCALE, SIZE = 'unet_small', 2, 64  # the light U-Net of pssr.models; LR crops of 32 px (a multiple of 32)


@pytest.fixture(scope='module')
def hr_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('hr')
    write_synthetic(d, 'em', n=3, size=96, seed=0)
    return d


def tiny(hr_dir, tmp, **kw) -> TrainConfig:
    "A config that trains in a second or two: 2 train + 1 valid image, 2 crops each, batch 2."
    d = dict(name='tiny', hr=str(hr_dir), crappifier='em', arch=ARCH, scale=SCALE, size=SIZE, bs=2, epochs=1, lr=1e-3,
             tiles_per_image=2, valid_pct=0.34, seed=0, models_dir=str(tmp/'models'))
    d.update(kw)
    return TrainConfig(**d)


@pytest.fixture(scope='module')
def trained(hr_dir, tmp_path_factory):
    "One tiny 2-epoch run, shared by the tests that only inspect its result."
    tmp = tmp_path_factory.mktemp('run')
    cfg = tiny(hr_dir, tmp, epochs=2, lr=3e-3, name='shared')
    return cfg, train(cfg)


# --- training works ---------------------------------------------------------------------------------

def test_loss_decreases_on_fixed_batch(hr_dir, tmp_path):
    "An 'lr'-mode model starts as exact bilinear upscaling (zero-initialised residual head); training must beat that."
    from pssr.crappify import Compose, AdditiveGaussian, Downsample
    crap = Compose(AdditiveGaussian(sigma=0.2), Downsample(SCALE)).to_dict()  # noisy: a learned filter wins quickly
    cfg = tiny(hr_dir, tmp_path, crappifier=crap, epochs=3, lr=3e-3, bs=4, tiles_per_image=32, name='learns')
    learn = train(cfg)
    xb, yb = learn.dls.valid.one_batch()
    def batch_loss(model):
        with torch.no_grad(): return learn.loss_func(model.eval()(xb), yb).item()
    initial = pssr_learner(learn.dls, cfg).model  # same seed -> the weights `train` started from
    bilinear = torch.nn.functional.interpolate(xb.as_subclass(torch.Tensor), scale_factor=SCALE, mode='bilinear')
    test_close = np.isclose(batch_loss(initial), learn.loss_func(bilinear, yb).item(), rtol=1e-4)
    assert test_close, 'an untrained model should equal bilinear upscaling'
    before, after = batch_loss(initial), batch_loss(learn.model)
    assert after < 0.99 * before, (before, after)


def test_outputs_and_record(trained):
    cfg, learn = trained
    stem = Path(cfg.models_dir)/cfg.name
    assert stem.with_suffix('.pth').is_file() and stem.with_suffix('.json').is_file()
    rec = json.loads(stem.with_suffix('.json').read_text())
    assert ModelRecord.from_dict(rec).config == dataclasses.replace(cfg, model=cfg.model.resolved())  # architecture stored once, as 'model'
    assert rec['model']['arch'] == ARCH and rec['model']['scale'] == SCALE and rec['model']['n_frames'] == 1
    assert rec['crappifier'] and rec['normalization']['pmin'] == cfg.pmin
    assert len(rec['data']['hr']['files']) == 3
    assert len(rec['data']['hr']['sha256']) == 64
    assert set(rec['versions']) >= {'torch', 'fastai', 'numpy', 'pssr', 'python'}
    assert [h['epoch'] for h in rec['history']] == [1, 2] and all(np.isfinite(h['train_loss']) for h in rec['history'])
    assert np.isfinite(rec['metrics']['valid_loss']) and 'psnr_metric' in rec['metrics']
    assert list_checkpoints(cfg) == []  # removed once the model is saved
    sd = torch.load(stem.with_suffix('.pth'), weights_only=True)  # a plain state dict, not a pickled Learner
    assert all(isinstance(v, torch.Tensor) for v in sd.values())


def test_save_load_identical_predictions(trained, tmp_path):
    cfg, learn = trained
    x = torch.rand(2, 1, SIZE // SCALE, SIZE // SCALE)
    learn.model.eval()
    with torch.no_grad(): ref = learn.model.cpu()(x)
    stem = Path(cfg.models_dir)/cfg.name
    for p in (stem, stem.with_suffix('.json')):
        model, rec = load_model(p)
        assert not model.training and rec.config.name == cfg.name
        with torch.no_grad(): torch.testing.assert_close(model(x), ref, rtol=0, atol=1e-6)
    save_model(model, tmp_path/'copy', cfg)  # a bare model saves too
    with torch.no_grad(): torch.testing.assert_close(load_model(tmp_path/'copy.pth')[0](x), ref, rtol=0, atol=1e-6)


def test_load_model_missing_or_corrupt(trained, tmp_path):
    cfg, _ = trained
    with pytest.raises(PssrInputError, match='not found'): load_model(tmp_path/'nothing.pth')
    src = Path(cfg.models_dir)/cfg.name
    (tmp_path/'bad.json').write_text(src.with_suffix('.json').read_text())
    (tmp_path/'bad.pth').write_bytes(src.with_suffix('.pth').read_bytes()[:1000])  # truncated download
    with pytest.raises(PssrInputError, match='bad.pth'): load_model(tmp_path/'bad')
    (tmp_path/'bad.json').write_text('{not json')
    with pytest.raises(PssrInputError, match='JSON'): load_model(tmp_path/'bad.pth')


class Interrupt(Callback):
    "Simulate Ctrl-C at the start of the second epoch."
    def before_train(self):
        if self.epoch == 1: raise KeyboardInterrupt


def test_resume_matches_uninterrupted(trained, hr_dir, tmp_path):
    full_cfg, full = trained
    cfg = TrainConfig(**{**full_cfg.to_dict(), 'name': 'interrupted', 'models_dir': str(tmp_path/'models')})
    with pytest.raises(KeyboardInterrupt): train(cfg, cbs=[Interrupt()])
    ck = list_checkpoints(cfg)
    assert [p.name for p in ck] == ['epoch_1.pth'] and not (Path(cfg.models_dir)/'interrupted.pth').exists()
    state = torch.load(ck[0], weights_only=True)
    assert state['epoch'] == 1 and state['n_epoch'] == 2 and state['pct_train'] == 0.5 and state['opt']['state']
    resumed = train(TrainConfig(**{**cfg.to_dict(), 'resume': True}))
    ref = {k: v.cpu() for k, v in full.model.state_dict().items()}
    for k, v in resumed.model.state_dict().items():
        torch.testing.assert_close(v.cpu(), ref[k], rtol=1e-5, atol=1e-6, msg=k)
    hist, ref_hist = resumed.pssr_history, full.pssr_history
    assert [h['epoch'] for h in hist] == [1, 2]
    np.testing.assert_allclose([h['valid_loss'] for h in hist], [h['valid_loss'] for h in ref_hist], rtol=1e-5)


def test_single_process_fit_path(hr_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', '2')
    assert is_distributed()
    monkeypatch.setenv('WORLD_SIZE', '1')
    assert not is_distributed()
    cfg = tiny(hr_dir, tmp_path)
    learn = pssr_learner(config_dataloaders(cfg), cfg)
    with distrib_context(learn) as l: assert l is learn  # no-op context on one process
    w0 = next(learn.model.parameters()).detach().clone()
    fit_one_cycle_maybe_distributed(learn, 1, 1e-3, cbs=[EpochSeed(0)])
    assert len(learn.recorder.values) == 1 and not torch.equal(w0, next(learn.model.parameters()).detach())


def test_multiframe_batch_shapes(tmp_path):
    write_synthetic(tmp_path/'movies', 'em', n=2, size=80, seed=0, n_frames=4)  # (T, Y, X) stacks
    cfg = tiny(tmp_path/'movies', tmp_path, n_frames=3, valid_pct=0.5)
    dls = config_dataloaders(cfg)
    x, y = dls.one_batch()
    assert x.shape == (cfg.bs, 3, SIZE // SCALE, SIZE // SCALE) and y.shape == (cfg.bs, 1, SIZE, SIZE)
    learn = pssr_learner(dls, cfg)
    with torch.no_grad(): assert learn.model.eval()(x).shape == y.shape


# --- bad input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('bad, field', [(dict(size=65), 'size'), (dict(n_frames=2), 'n_frames'),
                                        (dict(loss='nope'), 'nope'), (dict(crappifier='nope'), 'nope'),
                                        (dict(mode='hr'), 'mode'), (dict(bs=0), 'bs')])
def test_bad_config_values(hr_dir, tmp_path, bad, field):
    with pytest.raises(PssrInputError, match=field) as e: tiny(hr_dir, tmp_path, **bad)
    assert '\n' not in str(e.value)


def test_config_json_roundtrip(hr_dir, tmp_path):
    cfg = tiny(hr_dir, tmp_path, crappifier='fluo', n_frames=3)
    assert TrainConfig.from_json(cfg.to_json(tmp_path/'c.json')) == cfg
    (tmp_path/'u.json').write_text(json.dumps({**cfg.to_dict(), 'epochz': 3}))
    with pytest.raises(PssrInputError, match='epochz'): TrainConfig.from_json(tmp_path/'u.json')
    with pytest.raises(PssrInputError, match='not found'): TrainConfig.from_json(tmp_path/'none.json')


def test_empty_folder(tmp_path):
    (tmp_path/'empty').mkdir()
    with pytest.raises(PssrInputError, match='no images'):
        train(TrainConfig(hr=str(tmp_path/'empty'), arch=ARCH, scale=SCALE, size=SIZE, models_dir=str(tmp_path)))


def test_mismatched_pair_sizes(tmp_path):
    from pssr.io import write_tiff
    (tmp_path/'lr').mkdir(); (tmp_path/'hr').mkdir()
    for i in range(3):
        write_tiff(tmp_path/'lr'/f'im{i}.tif', np.random.rand(50, 50).astype(np.float32))   # 100/2 would be 60
        write_tiff(tmp_path/'hr'/f'im{i}.tif', np.random.rand(120, 120).astype(np.float32))
    cfg = TrainConfig(lr_dir=str(tmp_path/'lr'), hr_dir=str(tmp_path/'hr'), arch=ARCH, scale=SCALE, size=SIZE,
                      models_dir=str(tmp_path/'m'))
    with pytest.raises(PssrInputError, match='im0'): train(cfg)


# --- CLI ------------------------------------------------------------------------------------------------

def run_cli(*argv) -> tuple[int, str, str]:
    "`pssr train ...` in-process: (exit code, stdout, stderr)."
    try:
        from pssr.cli import main, build_parser
        build_parser()
    except ImportError: main = _local_main  # until every subcommand module exists
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main(['train', *map(str, argv)])
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()


def _local_main(argv):
    p = argparse.ArgumentParser(prog='pssr')
    add_cli(p.add_subparsers(dest='command'))
    args = p.parse_args(argv)
    try: return args.func(args)
    except PssrInputError as e:
        print(f'pssr: error: {e}', file=os.sys.stderr)
        return 2


def test_cli_trains_and_reports(hr_dir, tmp_path):
    common = ['--arch', ARCH, '--scale', SCALE, '--size', SIZE, '--bs', 2, '--tiles', 2, '--valid-pct', 0.34,
              '--models-dir', tmp_path/'m']
    stale = tmp_path/'m'/'cli_ckpt'/'epoch_7.pth'  # left by an earlier, unrelated run
    stale.parent.mkdir(parents=True); stale.write_bytes(b'old')
    code, out, err = run_cli('--hr', hr_dir, '--epochs', 1, '--name', 'cli', '--crappifier', 'em', *common)
    assert code == 0, err
    assert 'cli.pth' in out and 'psnr' in out
    rec = json.loads((tmp_path/'m'/'cli.json').read_text())
    assert rec['config']['epochs'] == 1 and rec['model']['arch'] == ARCH
    assert not stale.exists()  # a fresh run (no --resume) must not leave old checkpoints to be resumed later
    # --config loads a saved config (here the model's own .json); options on the command line override it
    code, out, err = run_cli('--config', tmp_path/'m'/'cli.json', '--name', 'cli2', '--epochs', 1)
    assert code == 0, err
    assert json.loads((tmp_path/'m'/'cli2.json').read_text())['model']['size'] == SIZE


@pytest.mark.parametrize('args, msg', [(['--size', 65], 'size'), (['--crappifier', 'nope'], 'nope'),
                                       (['--loss', 'nope'], 'nope'), (['--frames', 2], 'n_frames'),
                                       ([], None)])
def test_cli_bad_input_exit_2(hr_dir, tmp_path, args, msg):
    src = ['--hr', hr_dir] if args else ['--hr', tmp_path]  # [] -> an empty folder
    code, out, err = run_cli(*src, '--arch', ARCH, '--scale', SCALE, '--models-dir', tmp_path/'m', *args)
    assert code == 2, (out, err)
    assert err.startswith('pssr: error:') and len(err.strip().splitlines()) == 1, err
    if msg: assert msg in err


def test_cli_no_data_exit_2():
    code, out, err = run_cli('--epochs', 1)
    assert code == 2 and 'no training data' in err


# --- time budget, best weights, presets --------------------------------------------------------------

def test_minutes_ends_within_budget(hr_dir, tmp_path):
    "`minutes` sizes the one-cycle schedule so the whole run (data, model, validation, saving) ends within ±10 % of it."
    import time
    cfg = tiny(hr_dir, tmp_path, minutes=0.25, name='budget', arch='lr_resnet', tiles_per_image=8)
    t = time.perf_counter(); train(cfg); wall = time.perf_counter() - t
    assert 0.9 * 15 <= wall <= 1.1 * 15, f'{wall:.1f} s for a 15 s budget'
    rec = json.loads((tmp_path/'models'/'budget.json').read_text())
    s = rec['schedule']
    assert s['minutes'] == 0.25 and s['epochs'] == len(rec['history']) >= 1
    assert s['total_steps'] >= s['epochs'] and s['step_s'] > 0 and 0 < s['elapsed_s'] <= 1.1 * 15
    assert rec['config']['minutes'] == 0.25


def test_best_validation_weights_are_kept(hr_dir, tmp_path):
    "The saved weights are those of the best validation epoch; the JSON records the best and the last scores."
    class SpoilLastEpoch(Callback):  # make the last epoch's weights clearly worse
        order = 40
        def before_validate(self):
            if self.epoch == self.n_epoch - 1:
                with torch.no_grad():
                    for p in self.model.parameters(): p.add_(torch.randn_like(p) * 0.5)
    cfg = tiny(hr_dir, tmp_path, epochs=2, lr=1e-4, name='best')
    learn = train(cfg, cbs=[SpoilLastEpoch()])
    rec = json.loads((tmp_path/'models'/'best.json').read_text())
    assert rec['metrics']['epoch'] == 1 and rec['last_metrics']['epoch'] == 2
    assert rec['metrics']['valid_loss'] < rec['last_metrics']['valid_loss']
    model, _ = load_model(tmp_path/'models'/'best.pth')
    xb, yb = learn.dls.valid.one_batch()
    with torch.no_grad(): loss = learn.loss_func(model(xb.as_subclass(torch.Tensor)), yb).item()
    assert np.isclose(loss, rec['metrics']['valid_loss'], rtol=0.05, atol=1e-6), (loss, rec['metrics'])


def test_presets_and_invalid_minutes(hr_dir, tmp_path):
    from pssr.learner import PRESETS
    cfg = TrainConfig.from_preset('pssr-resnet34', hr=str(hr_dir))
    assert cfg.arch == 'resnet34' and cfg.mode == 'lr' and cfg.size == 128
    assert TrainConfig.from_preset('pssr-original').mode == 'upsampled'
    assert TrainConfig().arch == 'lr_resnet' and set(PRESETS) >= {'pssr-resnet34', 'pssr-original'}
    with pytest.raises(PssrInputError, match='preset'): TrainConfig.from_preset('nope')
    for bad in (0, -1, float('nan'), 'ten', True):
        with pytest.raises(PssrInputError, match='minutes'): tiny(hr_dir, tmp_path, minutes=bad)


def test_cli_minutes_and_preset(hr_dir, tmp_path):
    code, out, err = run_cli('--hr', hr_dir, '--preset', 'pssr-resnet34', '--arch', ARCH, '--scale', SCALE, '--size', SIZE,
                             '--bs', 2, '--tiles', 2, '--valid-pct', 0.34, '--minutes', 0.1, '--name', 'budget_cli',
                             '--models-dir', tmp_path/'m')
    assert code == 0, err
    assert 'Time budget 0.1 min' in out and 'Best validation' in out
    rec = json.loads((tmp_path/'m'/'budget_cli.json').read_text())
    assert rec['config']['minutes'] == 0.1 and rec['model']['arch'] == ARCH and rec['config']['lr'] == 1e-3
    assert rec['schedule']['epochs'] >= 1
    code, out, err = run_cli('--hr', hr_dir, '--minutes', -2, '--models-dir', tmp_path/'m')
    assert code == 2 and 'minutes' in err


# --- training for the acquisition to restore (--match) ----------------------------------------------------

def test_match_fits_noise_and_pixel_size(tmp_path):
    "`match` fits the physical crappifier's noise to the real LR image and resamples HR to its pixel size / scale."
    import dataclasses
    from pssr.crappify import PhysicalCrappifier, fit_crappifier
    from pssr.data import synthetic
    from pssr.io import write_tiff
    from pssr.learner import match_config
    truth_hr = synthetic('cell', n=1, size=1024, seed=3)[0]
    camera = PhysicalCrappifier(scale=4, psf_sigma=0, photons=12, read_noise=3, gain=2.5, offset=100, bits=16)
    lr_path = write_tiff(tmp_path/'lr.tif', camera.adu(truth_hr, 0).astype(np.uint16), pixel_size=0.2)  # 200 nm LR pixels
    (tmp_path/'hr').mkdir()
    write_tiff(tmp_path/'hr'/'a.tif', (synthetic('cell', n=1, size=512, seed=4)[0] * 4000).astype(np.uint16), pixel_size=0.025)
    cfg = TrainConfig(name='m', hr=str(tmp_path/'hr'), match=str(lr_path), scale=4, size=64, bs=2, epochs=1,
                      tiles_per_image=2, arch='lr_resnet', models_dir=str(tmp_path/'models'))
    m = match_config(cfg)
    assert m.hr_pixel_size == pytest.approx(0.05)  # 200 nm / 4
    c = m.get_crappifier()
    assert c == dataclasses.replace(fit_crappifier(lr_path), scale=4)  # exactly the fit, at the training scale
    assert c.gain == pytest.approx(2.5, rel=0.3)  # and the fit finds the camera
    learn = train(cfg)  # the 25 nm HR image is resampled to 50 nm before cropping
    assert learn.dls.pssr_tiles['tfm'].stacks[0].shape == (1, 256, 256)
    rec = json.loads((tmp_path/'models'/'m.json').read_text())
    assert rec['config']['match'] == str(lr_path) and rec['config']['hr_pixel_size'] == pytest.approx(0.05)
    assert rec['crappifier']['name'] == 'PhysicalCrappifier'
    assert rec['data']['split']['hr_pixel_size'] == pytest.approx(0.05)


def test_match_cli_and_errors(hr_dir, tmp_path):
    code, out, err = run_cli('--hr', hr_dir, '--match', tmp_path/'missing.tif', '--models-dir', tmp_path/'m')
    assert code == 2 and 'missing.tif' in err
    code, out, err = run_cli('--hr', hr_dir, '--hr-pixel-size', -1, '--models-dir', tmp_path/'m')
    assert code == 2 and ('hr_pixel_size' in err or 'hr-pixel-size' in err)


def test_deadline_stops_a_run_that_slows_down(hr_dir, tmp_path):
    "If the machine becomes slower than planned, training stops at 110 % of the budget and keeps the best weights."
    import time
    class SlowDownAfterFirstEpoch(Callback):  # another job starts: every step now takes 0.5 s longer
        def after_batch(self):
            if self.training and self.epoch >= 1: time.sleep(0.5)
    cfg = tiny(hr_dir, tmp_path, minutes=0.1, name='slow', tiles_per_image=8)
    t = time.perf_counter()
    with pytest.warns(UserWarning, match='110 %'): train(cfg, cbs=[SlowDownAfterFirstEpoch()])
    wall = time.perf_counter() - t
    assert wall <= 1.1 * 6 + 2, wall  # the deadline, plus one slowed step and saving
    rec = json.loads((tmp_path/'models'/'slow.json').read_text())
    assert rec['history'] and rec['metrics']['epoch'] <= len(rec['history'])
