#!/usr/bin/env python3
"""`make napari-screenshot`: a picture of the PSSR napari plugin in a real napari window.

Opens `napari.Viewer()`, loads the plugin's sample data (a synthetic EM phantom at 2 nm and its crappified 8 nm
version), docks the plugin's *Restore* widget, restores the LR layer through the widget with a small model (trained
for about a minute on synthetic EM phantoms in a temporary folder, or the one given with `--model`), shows LR,
restored and HR side by side (grid mode) and saves the whole window (`viewer.screenshot(canvas_only=False)`).

Needs a display with OpenGL: run it under Xvfb (Mesa's software OpenGL), e.g.
    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/napari_screenshot.py --overwrite
"""
import argparse, os, sys, tempfile, time
from pathlib import Path
from pssr.io import PssrInputError, atomic_write, check_output

OUT = Path(__file__).resolve().parent.parent / 'nbs' / 'images' / 'napari_plugin.png'

def train_small_model(models_dir: Path, minutes: float) -> Path:
    "Train a small EM model on synthetic phantoms within `minutes`; its `.pth` path."
    from pssr.data import write_synthetic
    from pssr.learner import TrainConfig, train
    hr = models_dir / 'hr'
    write_synthetic(hr, 'em', n=8, size=512, seed=1)  # seed 1: not the sample image (seed 0) shown in the viewer
    train(TrainConfig(name='napari_demo', hr=str(hr), crappifier='em', scale=4, minutes=minutes, bs=8,
                      models_dir=str(models_dir)))
    return models_dir / 'napari_demo.pth'

def wait_for(app, condition, timeout: float = 300) -> None:
    "Process Qt events until `condition()` holds (the widget restores in a napari thread worker)."
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout: raise TimeoutError(f'napari did not finish within {timeout:.0f} s')
        app.processEvents(); time.sleep(0.05)

def screenshot(model: Path, out: Path, size=(1600, 760)) -> Path:
    "Dock the Restore widget in a napari window, restore the sample LR layer through it, save the window as PNG."
    from pssr.predict import as_model
    # Load the model (torch, torchvision, triton) before Qt creates its OpenGL context: triton's bundled LLVM
    # loaded after Mesa's llvmpipe (Xvfb's software OpenGL) segfaults.
    as_model(model, 'cpu')
    import napari
    from qtpy.QtWidgets import QApplication
    viewer = napari.Viewer(title='PSSR napari plugin')
    viewer.window.resize(*size)
    hr, lr = viewer.open_sample('pssr-fastai', 'synthetic_em')
    _, widget = viewer.window.add_plugin_dock_widget('pssr-fastai', 'Restore')
    widget.image.value, widget.model.value = lr, model
    n = len(viewer.layers)
    widget()  # what the Restore button does: a background worker that adds the restored layer
    app = QApplication.instance()
    wait_for(app, lambda: len(viewer.layers) > n)
    restored = viewer.layers[-1]
    viewer.layers.remove(hr); viewer.layers.append(hr)  # grid, left to right: LR, restored, HR (ground truth)
    grid = getattr(viewer.canvas, 'grid', None) or viewer.grid  # napari >= 0.9: viewer.canvas.grid
    grid.enabled, grid.shape = True, (1, 3)
    viewer.layers.selection.active = restored
    viewer.reset_view()
    for _ in range(20): app.processEvents(); time.sleep(0.05)
    from napari._qt.dialogs.qt_notification import NapariQtNotification  # toasts (PyQt5 deprecation) cover the canvas
    for toast in viewer.window._qt_window.findChildren(NapariQtNotification): toast.hide()
    png = viewer.screenshot(canvas_only=False, flash=False)
    viewer.close()
    from PIL import Image
    img = Image.fromarray(png[..., :3]).quantize(colors=256, method=Image.Quantize.MEDIANCUT)  # keeps the PNG small
    with atomic_write(out, 'wb') as f: img.save(f, format='PNG', optimize=True)
    return out

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', type=Path, help='a saved pssr model (.pth/.json/bioimage.io .zip); default: train one')
    p.add_argument('--minutes', type=float, default=1.0, help='training budget when no --model is given')
    p.add_argument('-o', '--out', type=Path, default=OUT, help='the PNG to write (default: nbs/images/napari_plugin.png)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing PNG')
    a = p.parse_args(argv)
    try:
        out = check_output(a.out, inputs=[a.model] if a.model else (), overwrite=a.overwrite, option='--out')
        if a.model and not a.model.exists(): raise PssrInputError(a.model, 'does not exist', 'give a saved model or omit --model')
        if not os.environ.get('DISPLAY') and not os.environ.get('WAYLAND_DISPLAY'):
            raise PssrInputError('display', 'no X display (napari needs OpenGL)', 'run under xvfb-run -a -s "-screen 0 1600x1000x24"')
    except PssrInputError as e: print(e, file=sys.stderr); return 2
    import torch; torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix='pssr_napari_') as tmp:
        model = a.model or train_small_model(Path(tmp), a.minutes)
        screenshot(model, out)
    print(f'{out}: {out.stat().st_size / 1e3:.0f} KB')
    return 0

if __name__ == '__main__': sys.exit(main())
