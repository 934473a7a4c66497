import pytest

from tests.factories_checks import load_catalogue


@pytest.fixture
def catalogue(db):
    return load_catalogue()
