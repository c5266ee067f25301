"""Nothing lost, no traceback: a table-driven corpus of `pssr` command lines over bad inputs, bad options, bad output
locations and re-runs. Each case asserts the exit code, one line on stderr naming the file or option, no traceback,
unchanged inputs (hashed) and no partial output. Runs `pssr.cli.main` in-process on tiny generated files."""
import hashlib, json, os, shutil
from pathlib import Path

import numpy as np
import pytest

from pssr.cli import main
from pssr.io import write_tiff

# ---------------------------------------------------------------- the world every case starts from
def _img(rng, n=64): return (rng.random((n, n)) * 200 + 20).astype(np.float32)

@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    "A tiny saved model (untrained lr_resnet, scale 2) and one of scale 4: `m2.pth/.json`, `m4.pth/.json`."
    from pssr.learner import save_model, TrainConfig
    from pssr.models import pssr_unet
    d = tmp_path_factory.mktemp('models')
    for s in (2, 4):
        cfg = TrainConfig(name=f'm{s}', scale=s, size=16 * s, arch='unet_small', crappifier='none')
        save_model(pssr_unet(arch='unet_small', scale=s), d/f'm{s}', cfg)
    return d

@pytest.fixture
def world(tmp_path, model_dir):
    "Inputs of every kind under `tmp_path/in`; models copied in; cwd is `tmp_path`."
    rng = np.random.default_rng(0)
    w = tmp_path
    (w/'hr').mkdir(); (w/'lr').mkdir(); (w/'dup').mkdir(); (w/'bad').mkdir(); (w/'other').mkdir()
    for i in range(3): write_tiff(w/'hr'/f'h{i}.tif', _img(rng, 64))
    for i in range(2):
        write_tiff(w/'lr'/f'p{i}.tif', _img(rng, 16)); write_tiff(w/'dup'/f'p{i}.tif', _img(rng, 32))
    write_tiff(w/'lr'/'p0_pssr.tif', _img(rng, 16))
    write_tiff(w/'a.tif', _img(rng, 16)); write_tiff(w/'other'/'a.tif', _img(rng, 16))
    write_tiff(w/'lrimg.tif', _img(rng, 64))
    (w/'empty.tif').write_bytes(b'')
    (w/'corrupt.tif').write_bytes(b'II*\x00' + b'\x07' * 100)
    write_tiff(w/'nan.tif', np.full((16, 16), np.nan, np.float32))
    write_tiff(w/'const.tif', np.ones((64, 64), np.float32))
    write_tiff(w/'rgb.tif', rng.integers(0, 255, (3, 16, 16)).astype(np.uint8), axes='CYX')
    (w/'notes.txt').write_text('hello')
    (w/'afile').write_text('a file, not a folder')
    write_tiff(w/'bad'/'c.tif', np.ones((64, 64), np.float32))
    (w/'list.json').write_text('[1, 2]')
    (w/'badc.json').write_text('{"name": "Nope"}')
    (w/'cfg_nan.json').write_text('{"wd": "x", "hr": "hr"}')
    (w/'pairs').mkdir(); (w/'pairs'/'lr').mkdir(); (w/'pairs'/'hr').mkdir()
    write_tiff(w/'pairs'/'lr'/'q.tif', _img(rng, 16)); write_tiff(w/'pairs'/'hr'/'q.tif', _img(rng, 32)); write_tiff(w/'pairs'/'hr'/'q.png'.replace('.png', '.tiff'), _img(rng, 32))
    for f in model_dir.iterdir():  # weights hardlinked (hundreds of cases: no 25 MB copy each), records copied
        if f.suffix == '.pth': os.link(f, w/f.name)
        else: shutil.copy(f, w/f.name)
    rec = json.loads((w/'m2.json').read_text()); rec['normalization'] = {'pmin': 99, 'pmax': 1}
    os.link(w/'m2.pth', w/'badnorm.pth'); (w/'badnorm.json').write_text(json.dumps(rec))
    os.link(w/'m2.pth', w/'nojson.pth')
    (w/'trunc.pth').write_bytes((w/'m2.pth').read_bytes()[:200]); shutil.copy(w/'m2.json', w/'trunc.json')
    (w/'existing').mkdir(); (w/'existing'/'keep.txt').write_text('keep')
    (w/'x_pssr.tif').mkdir()  # a folder named like an output file
    old = os.getcwd(); os.chdir(w)
    yield w
    os.chdir(old)

def snapshot(root: Path) -> dict:
    "Hash of every file below `root` (the inputs)."
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob('*')) if p.is_file()}

TRAIN = ['train', '--hr', 'hr', '--arch', 'unet_small', '--size', '32', '--bs', '2', '--epochs', '1', '--tiles', '2',
         '--crappifier', 'none', '--scale', '2']

# ---------------------------------------------------------------- the corpus: (id, argv, code, what stderr must name)
BAD = [
    # data loss: an output that is an input
    ('fit-out-is-input', ['fit-crappifier', 'lrimg.tif', '-o', 'lrimg.tif'], 2, 'lrimg.tif'),
    ('fit-out-is-input-overwrite', ['fit-crappifier', 'lrimg.tif', '-o', 'lrimg.tif', '--overwrite'], 2, 'lrimg.tif'),
    ('predict-out-is-input', ['predict', 'm2.pth', 'lr/p0.tif', 'lr/p0_pssr.tif', '-o', 'lr'], 2, 'p0_pssr.tif'),
    ('predict-out-is-input-overwrite', ['predict', 'm2.pth', 'lr/p0.tif', 'lr/p0_pssr.tif', '-o', 'lr', '--overwrite'], 2, 'p0_pssr.tif'),
    ('crappify-into-input', ['crappify', 'hr', '.', '--tile', '16', '--n-tiles', '1', '--crappifier', 'none', '--overwrite'], 2, 'input'),
    ('crappify-out-in-input', ['crappify', 'hr', 'hr/out', '--tile', '16', '--n-tiles', '1'], 2, 'input'),
    ('crappify-out-is-input', ['crappify', 'hr', 'hr', '--tile', '16', '--n-tiles', '1', '--overwrite'], 2, 'input'),
    ('evaluate-out-is-input', ['evaluate', '--hr-dir', 'hr', '--crappifier', 'none', '--scale', '2', '-o', 'hr', '--overwrite'], 2, 'input'),
    ('evaluate-out-has-model', ['evaluate', '--model', 'm2.pth', '--hr-dir', 'hr', '--crappifier', 'none', '-o', '.', '--overwrite'], 2, 'input'),
    ('demo-out-holds-data', ['demo', '--data', 'hr', '-o', '.', '--overwrite', '--quick'], 2, 'input'),
    ('demo-out-in-data', ['demo', '--data', 'hr', '-o', 'hr/demo', '--quick'], 2, 'input'),
    ('train-model-is-init', TRAIN + ['--models-dir', '.', '--name', 'm2', '--init-model', 'm2.pth', '--overwrite'], 2, 'm2'),
    ('train-models-in-hr', TRAIN + ['--models-dir', 'hr'], 2, 'input'),
    # output locations: a file, under a file, a folder named like the output, existing outputs
    ('predict-outdir-is-file', ['predict', 'm2.pth', 'a.tif', '-o', 'afile'], 2, 'afile'),
    ('predict-outdir-under-file', ['predict', 'm2.pth', 'a.tif', '-o', 'afile/sub'], 2, 'afile'),
    ('predict-out-is-folder', ['predict', 'm2.pth', 'x.tif', '-o', '.'], 2, 'x.tif'),
    ('crappify-out-is-file', ['crappify', 'hr', 'afile', '--tile', '16'], 2, 'afile'),
    ('crappify-out-under-file', ['crappify', 'hr', 'afile/out', '--tile', '16'], 2, 'afile'),
    ('crappify-out-exists', ['crappify', 'hr', 'existing', '--tile', '16'], 2, '--overwrite'),
    ('fit-out-under-file', ['fit-crappifier', 'lrimg.tif', '-o', 'afile/c.json'], 2, 'afile'),
    ('fit-out-is-folder', ['fit-crappifier', 'lrimg.tif', '-o', 'existing'], 2, 'existing'),
    ('fit-out-not-json', ['fit-crappifier', 'lrimg.tif', '-o', 'c.tif'], 2, 'c.tif'),
    ('fit-out-exists', ['fit-crappifier', 'lrimg.tif', '-o', 'list.json'], 2, '--overwrite'),
    ('train-models-dir-is-file', TRAIN + ['--models-dir', 'afile'], 2, 'afile'),
    ('train-models-dir-under-file', TRAIN + ['--models-dir', 'afile/m'], 2, 'afile'),
    ('train-model-exists', TRAIN + ['--models-dir', '.', '--name', 'm4'], 2, '--overwrite'),
    ('evaluate-out-is-file', ['evaluate', '--hr-dir', 'hr', '--crappifier', 'none', '--scale', '2', '-o', 'afile'], 2, 'afile'),
    ('evaluate-out-exists', ['evaluate', '--hr-dir', 'hr', '--crappifier', 'none', '--scale', '2', '-o', 'existing'], 2, '--overwrite'),
    ('demo-out-is-file', ['demo', '-o', 'afile', '--quick'], 2, 'afile'),
    ('demo-out-exists', ['demo', '-o', 'existing', '--quick'], 2, '--overwrite'),
    # options and models
    ('predict-bs-0', ['predict', 'm2.pth', 'a.tif', '-o', 'out', '--bs', '0'], 2, '--bs'),
    ('predict-tile-0', ['predict', 'm2.pth', 'a.tif', '-o', 'out', '--tile', '0'], 2, '--tile'),
    ('predict-overlap-neg', ['predict', 'm2.pth', 'a.tif', '-o', 'out', '--overlap', '-1'], 2, '--overlap'),
    ('predict-device-tpu', ['predict', 'm2.pth', 'a.tif', '-o', 'out', '--device', 'tpu'], 2, '--device'),
    ('predict-bad-norm', ['predict', 'badnorm.pth', 'a.tif', '-o', 'out'], 2, 'badnorm.json'),
    ('predict-no-json', ['predict', 'nojson.pth', 'a.tif', '-o', 'out'], 2, 'nojson.json'),
    ('predict-trunc-model', ['predict', 'trunc.pth', 'a.tif', '-o', 'out'], 2, 'trunc.pth'),
    ('predict-no-model', ['predict', 'none.pth', 'a.tif', '-o', 'out'], 2, 'none.pth'),
    ('predict-same-names', ['predict', 'm2.pth', 'a.tif', 'other/a.tif', '-o', 'out'], 2, 'a.tif'),
    ('predict-missing-input', ['predict', 'm2.pth', 'nope.tif', '-o', 'out'], 2, 'nope.tif'),
    ('predict-empty', ['predict', 'm2.pth', 'empty.tif', '-o', 'out'], 2, 'empty.tif'),
    ('predict-corrupt', ['predict', 'm2.pth', 'corrupt.tif', '-o', 'out'], 2, 'corrupt.tif'),
    ('predict-nan', ['predict', 'm2.pth', 'nan.tif', '-o', 'out'], 2, 'nan.tif'),
    ('predict-txt', ['predict', 'm2.pth', 'notes.txt', '-o', 'out'], 2, 'notes.txt'),
    ('predict-rgb', ['predict', 'm2.pth', 'rgb.tif', '-o', 'out'], 2, '--channel'),
    ('crappify-list-json', ['crappify', 'hr', 'out', '--tile', '16', '--crappifier', 'list.json'], 2, 'list.json'),
    ('crappify-bad-class-json', ['crappify', 'hr', 'out', '--tile', '16', '--crappifier', 'badc.json'], 2, 'badc.json'),
    ('crappify-n-tiles-0', ['crappify', 'hr', 'out', '--n-tiles', '0'], 2, '--n-tiles'),
    ('crappify-tile-0', ['crappify', 'hr', 'out', '--tile', '0'], 2, '--tile'),
    ('crappify-tile-not-multiple', ['crappify', 'hr', 'out', '--tile', '17'], 2, 'tile'),
    ('crappify-tile-too-big', ['crappify', 'hr', 'out', '--tile', '128', '--n-tiles', '1'], 2, 'tile'),
    ('crappify-constant', ['crappify', 'bad', 'out', '--tile', '16', '--n-tiles', '1'], 2, 'c.tif'),
    ('crappify-missing-dir', ['crappify', 'nope', 'out'], 2, 'nope'),
    ('crappify-unknown', ['crappify', 'hr', 'out', '--crappifier', 'blurry'], 2, 'blurry'),
    ('crappify-scale-0', ['crappify', 'hr', 'out', '--scale', '0'], 2, '--scale'),
    ('fit-constant', ['fit-crappifier', 'const.tif', '-o', 'c.json'], 2, 'const.tif'),
    ('fit-missing', ['fit-crappifier', 'nope.tif', '-o', 'c.json'], 2, 'nope.tif'),
    ('fit-offset-nan', ['fit-crappifier', 'lrimg.tif', '-o', 'c.json', '--offset', 'nan'], 2, '--offset'),
    ('train-wd-nan', TRAIN + ['--wd', 'nan'], 2, '--wd'),
    ('train-lr-0', TRAIN + ['--lr-max', '0'], 2, '--lr-max'),
    ('train-epochs-0', TRAIN + ['--epochs', '0'], 2, '--epochs'),
    ('train-minutes-neg', TRAIN + ['--minutes', '-1'], 2, '--minutes'),
    ('train-device-tpu', TRAIN + ['--device', 'tpu'], 2, 'device'),
    ('train-init-other-scale', TRAIN + ['--init-model', 'm4.pth'], 2, 'm4.pth'),
    ('train-arch-unknown', TRAIN + ['--arch', 'vgg'], 2, 'arch'),
    ('train-no-data', ['train'], 2, 'train'),
    ('train-missing-hr', ['train', '--hr', 'nope', '--epochs', '1'], 2, 'nope'),
    ('train-config-bad', ['train', '--config', 'cfg_nan.json'], 2, 'cfg_nan.json'),
    ('train-config-list', ['train', '--config', 'list.json'], 2, 'list.json'),
    ('train-config-missing', ['train', '--config', 'nope.json'], 2, 'nope.json'),
    ('train-crappifier-list', TRAIN[:-4] + ['--crappifier', 'list.json', '--scale', '2'], 2, 'list.json'),
    ('evaluate-pairs-dup-stems', ['evaluate', '--lr-dir', 'pairs/lr', '--hr-dir', 'pairs/hr', '-o', 'ev'], 2, 'q.t'),
    ('evaluate-both-modes', ['evaluate', '--lr-dir', 'lr', '--hr-dir', 'hr', '--crappifier', 'em', '-o', 'ev'], 2, '--crappifier'),
    ('evaluate-missing-hr', ['evaluate', '--hr-dir', 'nope', '--crappifier', 'em', '-o', 'ev'], 2, 'nope'),
    ('evaluate-bad-model', ['evaluate', '--model', 'trunc.pth', '--hr-dir', 'hr', '--crappifier', 'none', '-o', 'ev'], 2, 'trunc.pth'),
    ('evaluate-scale-mismatch', ['evaluate', '--model', 'm2.pth', '--hr-dir', 'hr', '--crappifier', 'em', '--scale', '4', '-o', 'ev'], 2, 'scale'),
    ('demo-bad-arch', ['demo', '-o', 'dm', '--quick', '--arch', 'vgg'], 2, 'arch'),
    ('demo-bad-crappifier', ['demo', '-o', 'dm', '--quick', '--crappifier', 'blurry'], 2, 'blurry'),
    ('demo-epochs-0', ['demo', '-o', 'dm', '--quick', '--epochs', '0'], 2, '--epochs'),
    ('demo-missing-data', ['demo', '--data', 'nope', '-o', 'dm', '--quick'], 2, 'nope'),
    ('unknown-command', ['frobnicate'], 2, 'frobnicate'),
    ('unknown-option', ['predict', 'm2.pth', 'a.tif', '-o', 'out', '--frob'], 2, 'frob'),
]

@pytest.mark.parametrize('argv,code,names', [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_command_line(world, capsys, argv, code, names):
    before = snapshot(world)
    try: got = main(argv)
    except SystemExit as e: got = e.code
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith('pssr: warning:')]
    assert got == code, f'exit {got}, stderr: {err}'
    assert len(lines) == 1 and 'error' in lines[0], err
    assert 'Traceback' not in err
    assert names in lines[0], f'{names!r} not named in: {lines[0]}'
    after = snapshot(world)
    assert {k: v for k, v in after.items() if k in before} == before, 'an input changed'
    new = sorted(set(after) - set(before))
    assert not new, f'partial output left behind: {new}'
    assert not [p for p in world.rglob('.*tmp*')], 'temp files left behind'

# ---------------------------------------------------------------- re-runs, stale sets and interruptions
def run(*argv):
    try: return main(list(argv))
    except SystemExit as e: return e.code

def test_crappify_rerun_replaces_the_set(world):
    assert run('crappify', 'hr', 'out', '--tile', '16', '--n-tiles', '3', '--crappifier', 'none', '--scale', '2') == 0
    assert len(list((world/'out'/'hr').iterdir())) == 9
    assert run('crappify', 'hr', 'out', '--tile', '16', '--n-tiles', '1', '--crappifier', 'none', '--scale', '2') == 2  # exists
    assert run('crappify', 'hr', 'out', '--tile', '16', '--n-tiles', '1', '--crappifier', 'none', '--scale', '2', '--overwrite') == 0
    assert len(list((world/'out'/'hr').iterdir())) == 3  # nothing stale
    assert len((world/'out'/'tiles.csv').read_text().strip().splitlines()) == 4

def test_crappify_failure_leaves_previous_set(world):
    assert run('crappify', 'hr', 'out', '--tile', '16', '--n-tiles', '1', '--crappifier', 'none', '--scale', '2') == 0
    before = snapshot(world/'out')
    write_tiff(world/'hr'/'h9.tif', np.ones((64, 64), np.float32))  # a constant image fails half-way
    assert run('crappify', 'hr', 'out', '--tile', '16', '--n-tiles', '1', '--crappifier', 'none', '--scale', '2', '--overwrite') == 2
    assert snapshot(world/'out') == before
    assert not [p for p in world.glob('.*tmp*')]

def test_predict_rerun_and_stale_tmp(world):
    (world/'out').mkdir(); (world/'out'/'.a_pssr.tif.abcd1234.tmp').write_text('killed run')
    assert run('predict', 'm2.pth', 'a.tif', '-o', 'out', '-q') == 0
    assert sorted(p.name for p in (world/'out').iterdir()) == ['a_pssr.tif']  # the killed run's temp file is gone
    assert run('predict', 'm2.pth', 'a.tif', '-o', 'out', '-q') == 2
    assert run('predict', 'm2.pth', 'a.tif', '-o', 'out', '-q', '--overwrite') == 0

def test_predict_zarr_output_is_not_the_input(world):
    from pssr.predict import write_ome_zarr
    write_ome_zarr(world/'v.zarr', np.random.default_rng(0).random((16, 16)).astype(np.float32))
    shutil.copytree(world/'v.zarr', world/'out'/'v_pssr.zarr')
    before = snapshot(world/'out')
    assert run('predict', 'm2.pth', 'v.zarr', 'out/v_pssr.zarr', '-o', 'out', '--overwrite', '-q') == 2
    assert snapshot(world/'out') == before

def test_train_rerun_needs_overwrite_and_cleans_checkpoints(world):
    args = TRAIN + ['--models-dir', 'models', '--name', 'x']
    assert run(*args) == 0
    assert sorted(p.name for p in (world/'models').iterdir()) == ['x.json', 'x.pth']  # no checkpoint folder left
    pth = (world/'models'/'x.pth').read_bytes()
    assert run(*args) == 2
    assert (world/'models'/'x.pth').read_bytes() == pth
    assert run(*args, '--overwrite') == 0

def test_evaluate_report_is_complete_and_rerun_safe(world):
    args = ['evaluate', '--hr-dir', 'hr', '--crappifier', 'none', '--scale', '2', '-o', 'ev', '-q']
    assert run(*args) == 0
    files = sorted(p.name for p in (world/'ev').iterdir())
    assert 'summary.csv' in files and 'metrics.csv' in files
    assert run(*args) == 2
    assert run(*args, '--overwrite') == 0
    assert sorted(p.name for p in (world/'ev').iterdir()) == files

def test_interrupted_crappify_leaves_nothing(world, monkeypatch):
    import pssr.crappify as c
    def boom(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(c, '_write_csv', boom)
    assert run('crappify', 'hr', 'out', '--tile', '16', '--n-tiles', '1', '--crappifier', 'none', '--scale', '2') == 130
    assert not (world/'out').exists() and not [p for p in world.glob('.*tmp*')]

def test_help_is_quiet(capsys):
    assert run('--help') == 0
    assert capsys.readouterr().err == ''
