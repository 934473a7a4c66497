"""The shared proof rule of account connectors: a change is proven by a sign-in with the stored
password that works, or is refused, as the change says; anything else is a failed verification."""

import pytest

from governance.connectors.base import VerificationFailed, password_proof


@pytest.mark.embedded
def test_a_sign_in_that_behaves_as_the_change_says_is_the_proof():
    assert password_proof(lambda p: False, "pw", should_work=False, attempt="AUTH as app") == \
        "AUTH as app with the stored password is refused."
    assert password_proof(lambda p: True, "pw", should_work=True, attempt="AUTH as app") == \
        "AUTH as app with the stored password works."


@pytest.mark.embedded
def test_a_sign_in_that_contradicts_the_change_fails_the_verification():
    with pytest.raises(VerificationFailed, match="still works"):
        password_proof(lambda p: True, "pw", should_work=False, attempt="A sign-in of app_role")
    with pytest.raises(VerificationFailed, match="fails"):
        password_proof(lambda p: False, "pw", should_work=True, attempt="A sign-in of app_role")


@pytest.mark.embedded
def test_without_a_stored_password_nothing_is_tried_and_the_proof_says_so():
    tried = []
    line = password_proof(tried.append, None, should_work=False, attempt="AUTH as app")
    assert tried == [] and "not tried" in line
