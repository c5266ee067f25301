"Shared pytest fixtures: small synthetic images, never the shared development data."
import numpy as np
import pytest


@pytest.fixture
def rng():
    "A seeded random generator, fresh for every test."
    return np.random.default_rng(0)


@pytest.fixture(scope='session')
def cell():
    "skimage's 660 x 550 uint8 cell image (ships with scikit-image, no download)."
    import skimage.data
    return skimage.data.cell()
