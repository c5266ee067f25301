"The napari plugin headless (Qt offscreen): the manifest, restore/crappify through the widgets, sample data, cancelling training."
import os
os.environ.setdefault('QT_QPA_PLATFORM', 'offscreen')
import json
from pathlib import Path
import numpy as np, pytest, torch
napari = pytest.importorskip('napari')
pytest.importorskip('pytestqt')
from pssr.data import synthetic, write_synthetic
from pssr.io import PssrInputError
from pssr.learner import TrainConfig, save_model
from pssr.models import pssr_unet
from pssr.napari import restore_widget, crappify_widget, train_widget, sample_em

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def model_path(tmp_path_factory):
    "An untrained x4 network saved as a model (it restores as bilinear upscaling)."
    d = tmp_path_factory.mktemp('napari_model')
    cfg = TrainConfig(name='bilinear', hr='unused', arch='unet_small', scale=4, models_dir=str(d))
    save_model(pssr_unet('unet_small', scale=4), d/'bilinear', cfg)
    return d/'bilinear.pth'


def test_manifest_is_valid_and_registered():
    from npe2 import PluginManifest, PluginManager
    mf = PluginManifest.from_distribution('pssr-fastai')
    assert {w.display_name for w in mf.contributions.widgets} == {'Restore', 'Crappify preview', 'Train'}
    mf.validate_imports()  # every python_name imports
    pm = PluginManager.instance(); pm.discover()
    assert pm.get_manifest('pssr-fastai').display_name == 'PSSR'


def _image(data, **kw):
    "A napari Image layer (no viewer: this machine's offscreen Qt has no OpenGL for napari's canvas)."
    return napari.layers.Image(data, **kw)


def _layers(qtbot, gui, **values):
    "Call the widget with these values (a layer outside a viewer is no choice of its combo box), wait for its worker: the layers napari would add."
    worker, out = gui(**values), []
    worker.returned.connect(out.append)
    with qtbot.waitSignal(worker.finished, timeout=120_000): pass
    return [napari.layers.Layer.create(*t) for t in out[0]]


def test_restore_widget_gives_scaled_layers(qtbot, model_path):
    lr = (synthetic('em', n=1, size=64, seed=0)[0] * 1000).astype(np.uint16)
    out, unc = _layers(qtbot, restore_widget(), image=_image(lr, name='em', scale=(0.008, 0.008)),
                       model=model_path, tta=True, tile=32)
    assert out.data.shape == unc.data.shape == (256, 256)
    np.testing.assert_allclose(out.scale, (0.002, 0.002)); np.testing.assert_allclose(out.translate, (-0.003, -0.003))
    assert out.name == 'em pssr x4 [bilinear]' and 'uncertainty' in unc.name and unc.colormap.name == 'magma'
    assert abs(out.data.mean() - lr.mean()) < 0.02 * lr.mean()  # bilinear, in the input's units


def test_restore_widget_stack_and_missing_model(qtbot, model_path, tmp_path):
    gui = restore_widget()
    layer = _image(np.random.default_rng(0).random((3, 32, 40), np.float32), name='t', scale=(2, .1, .1))
    [out] = _layers(qtbot, gui, image=layer, model=model_path)
    assert out.data.shape == (3, 128, 160)
    np.testing.assert_allclose(out.scale, (2, .025, .025))
    with pytest.raises(PssrInputError, match='model file not found'): gui(image=layer, model=tmp_path/'nope.pth')  # before any thread
    with pytest.raises(PssrInputError, match='RGB'): gui(image=_image(np.zeros((8, 8, 3), np.uint8), rgb=True), model=model_path)


def test_crappify_widget_and_sample(qtbot):
    hr = napari.layers.Layer.create(*sample_em(128)[0])
    assert hr.data.shape == (128, 128)
    data, kw, kind = crappify_widget()(image=hr, crappifier='fluo', scale=2)
    lr = napari.layers.Layer.create(data, kw, kind)
    assert lr.data.shape == (64, 64) and 'fluo x2' in lr.name
    np.testing.assert_allclose(lr.scale, (0.004, 0.004))


def test_train_widget_cancels(qtbot, tmp_path):
    write_synthetic(tmp_path/'hr', 'em', n=3, size=160, seed=0)
    gui = train_widget()
    gui.hr_folder.value, gui.scale.value, gui.minutes.value = tmp_path/'hr', 2, 30.0
    gui.models_dir.value, gui.save_as.value = tmp_path/'models', 'cancelled'
    worker = gui()
    assert not gui.cancel_button.native.isHidden()
    qtbot.waitUntil(lambda: worker.is_running, timeout=30_000)
    gui.cancel_button.clicked.emit()  # the user presses Cancel while a 30-minute budget runs
    with qtbot.waitSignal(worker.finished, timeout=180_000): pass
    assert (tmp_path/'models'/'cancelled.pth').exists() and (tmp_path/'models'/'cancelled.json').exists()
    qtbot.waitUntil(gui.cancel_button.native.isHidden, timeout=10_000)
    assert json.loads((tmp_path/'models'/'cancelled.json').read_text())['config']['minutes'] == 30
