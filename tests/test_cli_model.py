"""One model record, read the same way by every command: a model saved with non-default normalisation percentiles
restores identically through `pssr predict` and `pssr evaluate --model`; a model saved by the previous format
(`tests/fixtures/v1_model.*`, `format_version: 1`) loads and restores as it did; `--help` shows the dataclass defaults."""
import contextlib, dataclasses, gzip, io, json, re, shutil
from pathlib import Path
import numpy as np, pytest
from pssr.cli import main
from pssr.config import TrainConfig, ModelRecord, option_defaults, format_default
from pssr.io import read_image, write_tiff

FIXTURES = Path(__file__).parent / 'fixtures'


def run(*argv) -> tuple[int, str, str]:
    "`pssr ...` in-process: (exit code, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main([str(a) for a in argv])
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def v1_model(tmp_path) -> Path:
    "The format-1 fixture model (pmin 1, pmax 99.5, x2) unpacked into `tmp_path/model/`."
    d = tmp_path / 'model'; d.mkdir()
    shutil.copy(FIXTURES / 'v1_model.json', d)
    with gzip.open(FIXTURES / 'v1_model.pth.gz') as f, open(d / 'v1_model.pth', 'wb') as g: shutil.copyfileobj(f, g)
    return d / 'v1_model.pth'


@pytest.fixture
def odd_model(tmp_path) -> Path:
    "A model saved by today's code with non-default percentiles (5, 95) and random weights (a strongly non-linear map)."
    import torch
    from pssr.models import build_model
    from pssr.model_io import save_model
    torch.manual_seed(0)
    cfg = TrainConfig(name='odd', arch='lr_resnet', scale=2, size=32, pmin=5.0, pmax=95.0)
    net = build_model(cfg.model)
    with torch.no_grad():
        for p in net.parameters(): p.add_(0.05 * torch.randn_like(p))
    return save_model(net, tmp_path / 'odd', cfg)


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    "A 32 px LR image (the fixture's input) and a 64 px HR partner, in `lr/` and `hr/`."
    lr = np.load(FIXTURES / 'v1_model_input.npy')
    rng = np.random.default_rng(1)
    hr = np.kron(lr, np.ones((2, 2), np.float32)) + rng.normal(0, 3, (64, 64)).astype(np.float32)
    for d, im in (('lr', lr), ('hr', hr)):
        (tmp_path / d).mkdir(); write_tiff(tmp_path / d / 'cell.tif', im)
    return tmp_path / 'lr', tmp_path / 'hr'


def test_old_model_loads_and_predicts(v1_model, pair, tmp_path):
    "A model written by the format-1 code restores, through the CLI, exactly what that code restored."
    code, out, err = run('predict', v1_model, pair[0] / 'cell.tif', '-o', tmp_path / 'pred', '-q')
    assert code == 0 and err == '', err
    y, _ = read_image(tmp_path / 'pred' / 'cell_pssr.tif')
    np.testing.assert_allclose(y, np.load(FIXTURES / 'v1_model_restored.npy'), rtol=0, atol=1e-3)


def test_predict_and_evaluate_restore_identically(odd_model, pair, tmp_path):
    "`pssr evaluate --model` normalises with the recorded (non-default) percentiles, as `pssr predict` does."
    from pssr.evaluate import as_predictor, evaluate_image, model_degradation
    from pssr.model_io import load_model
    from pssr.predict import restore
    assert load_model(odd_model)[1].percentiles == (5.0, 95.0)  # not the defaults (0.1, 99.9)
    assert run('predict', odd_model, pair[0] / 'cell.tif', '-o', tmp_path / 'pred', '-q')[0] == 0
    predicted = read_image(tmp_path / 'pred' / 'cell_pssr.tif')[0]
    lr, hr = read_image(pair[0] / 'cell.tif')[0], read_image(pair[1] / 'cell.tif')[0]
    evaluated = as_predictor(odd_model)[0](lr)  # what `pssr evaluate --model` restores
    np.testing.assert_allclose(evaluated, predicted, rtol=0, atol=1e-4)
    defaults = restore(load_model(odd_model)[0], lr, progress=False, pmin=0.1, pmax=99.9)
    assert np.abs(defaults - predicted).max() > 1e-2  # the test can tell the percentiles apart
    code, out, err = run('evaluate', '--model', odd_model, '--lr-dir', pair[0], '--hr-dir', pair[1], '-o', tmp_path / 'ev', '-q')
    assert code == 0, err
    import pandas as pd
    cli = pd.read_csv(tmp_path / 'ev' / 'metrics.csv').set_index('method').loc['model']
    ref = evaluate_image(lr, hr, 2, lambda x: predicted, name='cell', degrade=model_degradation(odd_model, 2)).table
    ref = ref.set_index('method').loc['model']
    for k in ('psnr', 'ssim', 'nrmse'): assert cli[k] == pytest.approx(ref[k], abs=1e-4), k


def test_record_round_trip_of_saved_model(v1_model, tmp_path):
    "Re-saving the old model writes format 2, which reads back into the same record."
    from pssr.model_io import load_model, save_model, read_record
    net, rec = load_model(v1_model)
    save_model(net, tmp_path / 'again', rec.config)
    d = json.loads((tmp_path / 'again.json').read_text())
    assert d['format_version'] == 2 and 'scale' not in d['config'] and d['model']['scale'] == 2
    rec2 = read_record(tmp_path / 'again.pth')
    assert (rec2.model, rec2.normalization, rec2.config) == (rec.model, rec.normalization, rec.config)


def help_text(cmd) -> str:
    code, out, _ = run(cmd, '--help')
    assert code == 0
    return out


def shown_default(text:str, flag:str) -> str:
    "The `(default: ...)` in the `--help` entry of `flag`."
    entry = re.search(r'\n  ' + re.escape(flag) + r'(?![\w-])(.*?)(?=\n  -|\Z)', text, re.S)
    assert entry, flag
    return re.search(r'\(default: ([^)]*)\)', ' '.join(entry[1].split()))[1]


def test_train_help_shows_dataclass_defaults():
    "Every `TrainConfig` field `pssr train` exposes shows the dataclass's default."
    from pssr.cli import TRAIN_OPTIONS, TRAIN_FLAGS
    text, defaults = help_text('train'), option_defaults(TrainConfig())
    for f in TRAIN_OPTIONS:
        assert shown_default(text, TRAIN_FLAGS.get(f, '--' + f.replace('_', '-'))) == format_default(defaults[f]), f
    assert len(TRAIN_OPTIONS) >= 30


def test_demo_help_shows_dataclass_defaults():
    from pssr.config import DemoConfig
    text, defaults = help_text('demo'), option_defaults(DemoConfig())
    for f in ('minutes', 'epochs', 'arch', 'crappifier', 'size', 'seed', 'device'):
        assert shown_default(text, '--' + f) == format_default(defaults[f]), f


@pytest.mark.parametrize('argv, old, new', [
    (['train', '--hr', 'nowhere', '--lr', '1e-3'], '--lr', '--lr-max'),
    (['evaluate', '--hr', 'nowhere', '--crappifier', 'em', '-o', 'ev'], '--hr', '--hr-dir'),
    (['evaluate', '--hr-dir', 'nowhere', '--crappifier', 'em', '--outdir', 'ev'], '--outdir', '--out'),
    (['evaluate', '--hr-dir', 'nowhere', '--crappifier', 'em', '-o', 'ev', '--no-progress'], '--no-progress', '--quiet'),
    (['predict', 'nowhere.pth', 'nowhere.tif', '--outdir', 'out'], '--outdir', '--out'),
])
def test_deprecated_spellings_warn_once(tmp_path, monkeypatch, argv, old, new):
    "Old spellings still work for one release, with one warning line naming the new one."
    monkeypatch.chdir(tmp_path)
    code, _, err = run(*argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2, err  # the warning, then the (expected) missing-input error
    assert old in lines[0] and new in lines[0] and 'deprecated' in lines[0]
    assert lines[1].startswith('pssr: error:') and 'nowhere' in lines[1]


def test_predict_pmin_pmax_and_planes(v1_model, tmp_path):
    "--pmin/--pmax override the recorded percentiles; --z picks a plane of a stack."
    from pssr.model_io import load_model
    from pssr.predict import restore
    lr = np.load(FIXTURES / 'v1_model_input.npy')
    write_tiff(tmp_path / 'stack.tif', np.stack([lr, lr[::-1]]), axes='ZYX')
    code, _, err = run('predict', v1_model, tmp_path / 'stack.tif', '-o', tmp_path / 'o', '--z', '1', '--pmin', '2', '--pmax', '98', '-q')
    assert code == 0, err
    y = read_image(tmp_path / 'o' / 'stack_pssr.tif')[0]
    np.testing.assert_allclose(y, restore(load_model(v1_model)[0], lr[::-1], progress=False, pmin=2, pmax=98), rtol=0, atol=1e-4)
    assert run('predict', v1_model, tmp_path / 'stack.tif', '-o', tmp_path / 'o2', '--pmin', '99', '--pmax', '1')[0] == 2


def test_dotted_model_names_load_their_own_files(tmp_path):
    "A model named `v1.2` is `v1.2.pth` + `v1.2.json`, never `v1.json` (a `with_suffix` slip would load model `v1`'s record)."
    from pssr.config import TrainConfig
    from pssr.models import pssr_unet
    from pssr.model_io import save_model, load_model
    for name, s in (('v1', 2), ('v1.2', 4)):
        save_model(pssr_unet(arch='unet_small', scale=s), tmp_path/name,
                   TrainConfig(name=name, scale=s, size=16 * s, arch='unet_small', crappifier='none'))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['v1.2.json', 'v1.2.pth', 'v1.json', 'v1.pth']
    for given, scale in (('v1', 2), ('v1.2', 4), ('v1.2.pth', 4), ('v1.2.json', 4)):
        assert load_model(tmp_path/given)[1].scale == scale, given
