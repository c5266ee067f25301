#!/usr/bin/env python3
"""`make data`: fill `data/` with something to train on.

Downloads a sample of the PSSR paper's data (Texas Data Repository, doi:10.18738/T8/YLCK5A) into
`data/pssr_dataverse/` where the network allows, checksum-verified and resumable (`pssr.datasets`), and always writes
synthetic high-resolution phantoms with known ground truth into `data/synthetic/` (`pssr.phantoms.write_synthetic`).
Without network access it says so and still exits 0 with the synthetic samples written.
"""
import argparse, fnmatch, sys
from pathlib import Path
from pssr.io import PssrInputError
from pssr.phantoms import write_synthetic
from pssr.datasets import PSSR_DATAVERSE_DOI, dataverse_files, download, fetch_dataverse

# what the synthetic sample holds: (kind, files, size px, frames per file)
SYNTHETIC = (('em', 4, 512, 1), ('fluo', 4, 512, 1), ('fluo', 2, 256, 16))

def write_samples(folder: Path, seed: int = 0) -> list[Path]:
    "Synthetic EM and fluorescence phantoms (and fluorescence time-lapses) as ImageJ TIFFs with pixel sizes."
    out = []
    for kind, n, size, frames in SYNTHETIC:
        sub = folder / (kind if frames == 1 else f'{kind}_timelapse')
        if sub.is_dir() and any(sub.iterdir()): print(f'{sub}: already there, kept'); continue
        out += write_synthetic(sub, kind, n=n, size=size, seed=seed, n_frames=frames)
    return out

def choose(files: list[dict], pattern: str, max_mb: float) -> list[dict]:
    "Files matching `pattern`, smallest first, within `max_mb` megabytes in total (0: no limit)."
    rel = lambda f: f"{f['folder']}/{f['name']}".lstrip('/')
    picked, total = [], 0
    for f in sorted((f for f in files if fnmatch.fnmatch(rel(f), pattern)), key=lambda f: f['size'] or 0):
        if max_mb and total + (f['size'] or 0) > max_mb * 1e6: break
        picked.append(f); total += f['size'] or 0
    return picked

def fetch_sample(dest: Path, pattern: str, max_mb: float) -> list[Path]:
    "Download the chosen files of the PSSR Dataverse dataset into `dest`; raises `PssrInputError` when unreachable."
    if not max_mb: return fetch_dataverse(dest, pattern)  # everything matching (the whole dataset with '*')
    files = dataverse_files(PSSR_DATAVERSE_DOI, timeout=30)
    picked = choose(files, pattern, max_mb)
    print(f'{PSSR_DATAVERSE_DOI}: {len(files)} files; downloading {len(picked)} (smallest first, up to {max_mb:g} MB); '
          f'all of them: make data DATA_MAX_MB=0')
    return [download(f['url'], dest / f"{f['folder']}/{f['name']}".lstrip('/'), md5=f['md5']) for f in picked]

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='data', help='data folder (default: %(default)s)')
    p.add_argument('--pattern', default='*', help="glob on 'folder/name' of the Dataverse files (default: %(default)s)")
    p.add_argument('--max-mb', type=float, default=500, help='download budget in MB, 0 for no limit (default: %(default)g)')
    p.add_argument('--offline', action='store_true', help='do not try the network')
    a = p.parse_args(argv)
    out = Path(a.out)
    written = write_samples(out / 'synthetic')
    print(f'{out / "synthetic"}: {len(written)} synthetic images written (EM 2 nm, fluorescence 50 nm pixels)')
    if a.offline: return 0
    try: got = fetch_sample(out / 'pssr_dataverse', a.pattern, a.max_mb)
    except PssrInputError as e:
        print(f'PSSR data not downloaded: {e}\n'
              f'Only the synthetic samples are in {out}/. With network access run `make data` again '
              f'(or pssr.datasets.fetch_dataverse("{out}/pssr_dataverse", pattern)).')
        return 0
    print(f'{out / "pssr_dataverse"}: {len(got)} files from {PSSR_DATAVERSE_DOI}')
    return 0

if __name__ == '__main__': sys.exit(main())
