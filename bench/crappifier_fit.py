"""Fitted vs PSSR crappifier on real low/high-SNR fluorescence pairs (GigaDB BPAE, ../shared/data).

For each pair: fit a PhysicalCrappifier to the real low-SNR image (blind: the low-SNR image alone; pair: with its
high-SNR partner), crappify the high-SNR image at scale 1 with it and with PSSR's fixed fluorescence crappifier,
and compare the noise residuals (`noise_residuals`) with the real low-SNR image's (`noise_distance`).
Run: .venv/bin/python bench/crappifier_fit.py
"""
import sys, time
import numpy as np
from pssr.io import read_image, normalize_percentile, shared_data_dir, PssrInputError
from pssr.crappify import fit_crappifier, FluoCrappifier, noise_residuals, noise_distance

def candidates(lr, hr):
    "The crappifiers to compare: name -> (callable building it, fit time in s)."
    out = {}
    for name, make in [('fitted (LR only)', lambda: fit_crappifier(lr)), ('fitted (LR+HR)', lambda: fit_crappifier(lr, hr=hr)),
                       ('PSSR fluo', lambda: FluoCrappifier(scale=1))]:
        t = time.time()
        try: out[name] = (make(), time.time() - t)
        except PssrInputError as e: print(f'  {name}: fit failed: {e}')
    return out

def main():
    root = shared_data_dir()
    if root is None or not (root / 'fluo' / 'gigadb_bpae').exists():
        print('shared data not found: nothing to benchmark'); return 1
    root = root / 'fluo' / 'gigadb_bpae'
    print(f"{'image':14s} {'crappifier':18s} {'Wasserstein':>11s} {'hist L1':>8s} {'noise sd':>8s} {'real sd':>8s} {'fit s':>6s}  parameters")
    for p in sorted((root / 'low_snr').glob('*.png')):
        lr, meta = read_image(p)
        hr, _ = read_image(root / 'high_snr' / p.name)
        lr = lr.astype(meta.dtype)  # keep the 8-bit dtype: the fit reads the bit depth from it
        r_real = noise_residuals(lr, hr)
        hn = normalize_percentile(hr)
        for name, (c, secs) in candidates(lr, hr).items():
            r = noise_residuals(c(hn, 0), hr)
            d = noise_distance(r_real, r)
            par = '' if name == 'PSSR fluo' else f'photons={c.photons:.1f} read={c.read_noise:.2f}e- gain={c.gain:.3g} offset={c.offset:.3g} bits={c.bits}'
            print(f'{p.stem:14s} {name:18s} {d["wasserstein"]:11.4f} {d["hist_l1"]:8.3f} {r.std():8.4f} {r_real.std():8.4f} {secs:6.2f}  {par}')
    return 0

if __name__ == '__main__': sys.exit(main())
