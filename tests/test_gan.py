"Adversarial training (`loss='gan'`, `pssr train --gan`): trains, saves the generator, reloads, predicts; bad combinations refused."
import json

import numpy as np
import pytest
import torch

from pssr.cli import main
from pssr.data import write_synthetic
from pssr.io import PssrInputError, read_image, write_tiff
from pssr.learner import TrainConfig, load_model

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def hr_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('hr')
    write_synthetic(d, 'fluo', n=3, size=96, seed=0)
    return d


def test_cli_gan_train_save_reload_predict(hr_dir, tmp_path, capsys):
    models = tmp_path / 'models'
    assert main(['train', '--hr', str(hr_dir), '--gan', '--loss', 'l1', '--gan-weight', '0.05', '--gan-epochs', '1', '--epochs', '1',
                 '--arch', 'unet_small', '--scale', '2', '--size', '64', '--bs', '2', '--tiles', '2', '--valid-pct', '0.34',
                 '--crappifier', 'em', '--name', 'g', '--models-dir', str(models)]) == 0
    assert 'Adversarial fine-tuning: 1 epochs' in capsys.readouterr().out
    rec = json.loads((models / 'g.json').read_text())
    assert rec['config']['loss'] == 'gan' and rec['config']['gan_pixel_loss'] == 'l1' and rec['config']['gan_weight'] == 0.05
    net, _ = load_model(models / 'g.pth')
    assert not any('critic' in k for k in net.state_dict())  # the generator only
    src = write_tiff(tmp_path / 'a.tif', np.random.default_rng(0).random((40, 40)).astype(np.float32))
    assert main(['predict', str(models / 'g.pth'), str(src), '-o', str(tmp_path / 'out'), '-q']) == 0
    y = read_image(tmp_path / 'out' / 'a_pssr.tif')[0]
    assert y.shape == (80, 80) and np.isfinite(y).all()
    assert not list((models).glob('g_ckpt*'))  # checkpoints removed after the run


@pytest.mark.parametrize('extra,message', [
    (['--gan', '--size', '16', '--scale', '2'], 'at least 32 px'),
    (['--gan', '--minutes', '1'], 'two phases'),
    (['--gan-weight', '0.1'], 'only apply to adversarial training'),
    (['--gan', '--loss', 'nope'], 'unknown pixel loss'),
])
def test_cli_gan_bad_combinations(hr_dir, tmp_path, capsys, extra, message):
    assert main(['train', '--hr', str(hr_dir), '--models-dir', str(tmp_path / 'm'), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'm').exists()


def test_gan_needs_clean_targets():
    with pytest.raises(PssrInputError, match='clean targets'): TrainConfig(loss='gan', noisy='somewhere')
