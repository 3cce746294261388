import pytest
from encoding_sim import simulate


@pytest.fixture
def data():
    return simulate()
