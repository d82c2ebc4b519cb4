import pytest

from corpus import SHARED


@pytest.fixture
def shared_corpus():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the shared peer corpus lives beside the repo "
                    "(CI has it); these tests read it in place and never copy it")
    return SHARED
