import pytest


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One cache folder for the data tests, so the 4 mm anatomy is built once per run."""
    return tmp_path_factory.mktemp("neuralizer-cache")
