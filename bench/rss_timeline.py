"""Resident memory over time while `pssr predict` restores one input out of core: the peak of each phase, and of
each tenth of the block phase (is the peak level from the first block to the last?). Issue 13's "flat" target.

    .venv/bin/python bench/rss_timeline.py MODEL.pth INPUT.ome.zarr   # a saved model; an input restored out of core

(`bench/predict_speed.py`'s default model and 4096² OME-Zarr input are made by its `make_model` / `make_input`.)
Resident memory (VmRSS) is sampled every 20 ms by a thread, so a spike shorter than that can be missed; the
process's high-water mark (VmHWM) is printed too.
"""
import sys, tempfile, threading, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from predict_speed import status_mb  # one reader of /proc/self/status


def main(model:Path, inp:Path):
    import pssr.predict as pp
    marks, samples, done = {}, [], threading.Event()
    def sampler():
        while not done.is_set(): samples.append((time.time(), status_mb('VmRSS'))); time.sleep(0.02)
    def marked(name, fn):  # record when `fn` starts and ends
        def run(*a, **k):
            marks[name + ' start'] = time.time(); r = fn(*a, **k); marks[name + ' end'] = time.time(); return r
        return run
    pp.restore_blocks, pp.write_pyramid = marked('blocks', pp.restore_blocks), marked('pyramid', pp.write_pyramid)
    print(f'before: {status_mb("VmHWM"):.0f} MB (imports)')
    threading.Thread(target=sampler, daemon=True).start()
    with tempfile.TemporaryDirectory() as d: pp.predict_file(model, inp, Path(d), progress=False, device='cpu')
    done.set()
    b0, b1 = marks['blocks start'], marks['blocks end']
    phase = lambda t: 'set-up' if t < b0 else 'blocks' if t < b1 else 'pyramid' if t < marks.get('pyramid end', 1e18) else 'after'
    peaks, tenths = {}, [0.] * 10
    for t, r in samples:
        peaks[phase(t)] = max(peaks.get(phase(t), 0), r)
        if b0 <= t < b1: i = min(9, int((t - b0) / (b1 - b0) * 10)); tenths[i] = max(tenths[i], r)
    print('peak RSS by phase (MB):', {k: round(v) for k, v in peaks.items()})
    print('block phase, peak by tenth (MB):', [round(x) for x in tenths])
    print(f'high-water mark: {status_mb("VmHWM"):.0f} MB')


if __name__ == '__main__':
    if len(sys.argv) != 3: sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
