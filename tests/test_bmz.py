"bioimage.io export and import: a small trained model, bioimage.io's own model test, round trips through `pssr predict`."
import contextlib, io, sys
import numpy as np, pytest, torch
pytest.importorskip('bioimageio.core')
from bioimageio.core import test_model as bmz_test_model, load_model_description, predict, Sample, Tensor, create_prediction_pipeline
from pssr.bmz import export, load_bmz, strip_pssr_record, test_image as lr_image
from pssr.cli import main
from pssr.data import write_synthetic
from pssr.io import read_image, write_tiff, percentile_range, PssrInputError
from pssr.learner import TrainConfig, train, load_model
from pssr.predict import restore

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A tiny lr_resnet trained for 2 short epochs on synthetic EM, exported once."
    tmp = tmp_path_factory.mktemp('bmz')
    write_synthetic(tmp/'hr', 'em', n=3, size=96, seed=0)
    cfg = TrainConfig(name='tiny', hr=str(tmp/'hr'), arch='lr_resnet', scale=2, size=64, bs=2, epochs=2, lr=3e-3,
                      tiles_per_image=2, valid_pct=0.34, models_dir=str(tmp/'models'), hr_pixel_size=0.002)
    train(cfg)
    pth = tmp/'models'/'tiny.pth'
    return pth, export(pth, tmp/'tiny.zip', authors=['A. Tester'])


def test_package_passes_bioimageio_model_test(trained):
    summary = bmz_test_model(str(trained[1]))
    assert summary.status == 'passed', summary.format()
    names = {d.name for d in summary.details}
    assert any('torchscript' in n for n in names) and any('pytorch_state_dict' in n for n in names)


def test_package_contents(trained):
    descr = load_model_description(trained[1])
    assert descr.weights.pytorch_state_dict is not None and descr.weights.torchscript is not None
    out_y = descr.outputs[0].axes[2]
    assert descr.inputs[0].axes[2].scale == pytest.approx(0.004) and out_y.scale == pytest.approx(0.002)  # µm, ×2 finer
    assert out_y.halo == 16 and str(out_y.unit) == 'micrometer'
    pre = next(p for p in descr.inputs[0].preprocessing if p.id == 'scale_range')
    assert (pre.kwargs.min_percentile, pre.kwargs.max_percentile) == (0.1, 99.9)
    assert descr.cite[0].doi == '10.1038/s41592-021-01080-z' and descr.authors[0].name == 'A. Tester'
    assert descr.covers and descr.documentation and descr.training_data is not None
    assert descr.config.pssr['config']['name'] == 'tiny' and len(descr.config.pssr['history']) == 2


def test_package_output_equals_restore(trained):
    "bioimage.io's prediction on the test input (and the stored test output) equal `restore` within 1e-4."
    pth, pkg = trained
    descr = load_model_description(pkg)
    x = np.load(descr.inputs[0].test_tensor.get_reader())
    lo, hi = percentile_range(x[0, 0])
    ours = (restore(pth, x[0, 0], tile=x.shape[-1], overlap=0, progress=False) - lo) / (hi - lo)
    stored = np.load(descr.outputs[0].test_tensor.get_reader())[0, 0]
    np.testing.assert_allclose(stored, ours, atol=1e-4)
    sample = Sample(members={'input': Tensor.from_numpy(x, dims=('batch', 'channel', 'y', 'x'))}, stat={}, id='t')
    with create_prediction_pipeline(descr) as pp:  # as bioimage.io's model test runs it: the network on the whole input
        theirs = pp.predict_sample_without_blocking(sample, skip_input_padding=True, skip_output_cropping=True)
    np.testing.assert_allclose(theirs.members['output'].data.values[0, 0], ours, atol=1e-4)
    # `bioimageio predict` pads by the halo (reflection) and crops: the same image, up to the border handling
    padded = predict(model=pkg, inputs=sample).members['output'].data.values[0, 0]
    assert np.abs(padded - ours)[16:-16, 16:-16].mean() < 0.02


def test_load_model_round_trip(trained):
    "An exported package restores exactly as the model it came from, also as a package from elsewhere."
    pth, pkg = trained
    x = lr_image(80, seed=3)
    want = restore(pth, x, progress=False)
    np.testing.assert_allclose(restore(pkg, x, progress=False), want, atol=1e-5)
    net, rec = load_model(pkg)
    assert rec.config.name == 'tiny' and net.scale == 2
    foreign = strip_pssr_record(pkg, pkg.with_name('foreign.zip'))
    np.testing.assert_allclose(restore(foreign, x, progress=False), want, atol=1e-4)


def test_cli_predict_with_package(trained, tmp_path):
    pth, pkg = trained
    write_tiff(tmp_path/'lr.tif', lr_image(64, seed=5))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(['predict', str(pkg), str(tmp_path/'lr.tif'), '-o', str(tmp_path/'zip'), '-q']) == 0
        assert main(['predict', str(pth), str(tmp_path/'lr.tif'), '-o', str(tmp_path/'pth'), '-q']) == 0
    a, meta = read_image(tmp_path/'zip'/'lr_pssr.tif')
    b, _ = read_image(tmp_path/'pth'/'lr_pssr.tif')
    assert a.shape == (128, 128)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_cli_export_and_bad_input(trained, tmp_path, capsys):
    pth, pkg = trained
    assert main(['export-bmz', str(pth), '-o', str(tmp_path/'m.zip'), '--no-test', '--author', 'X', '--name', 'PSSR tiny']) == 0
    assert load_model_description(tmp_path/'m.zip').name == 'PSSR tiny'
    assert main(['export-bmz', str(pth), '-o', str(tmp_path/'m.zip')]) == 2
    assert 'already exists' in capsys.readouterr().err
    assert main(['export-bmz', str(tmp_path/'none.pth'), '-o', str(tmp_path/'n.zip')]) == 2
    (tmp_path/'junk.zip').write_bytes(b'not a zip')
    with pytest.raises(PssrInputError): load_bmz(tmp_path/'junk.zip')


def test_without_bioimageio_says_how_to_install(monkeypatch, tmp_path):
    "The core works without the extra; only bioimage.io functions stop, with the pip command."
    for m in [m for m in sys.modules if m.startswith('bioimageio')]: monkeypatch.setitem(sys.modules, m, None)
    with pytest.raises(PssrInputError, match=r"pssr-fastai\[bmz\]"): load_model(tmp_path/'x.zip')
